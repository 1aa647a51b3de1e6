"""What the gateway needs from the node, declared here so the gateway never imports the node.

The node hands concrete services to ``build_app``; they raise the ServiceError subclasses below
for anything the user must hear about, and the gateway turns them into problem documents.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol

from zion.protocols.cid import Cid
from zion.protocols.records import Record


class ServiceError(Exception):
    status = 400
    code = "bad-request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(ServiceError):
    """A request that is malformed in itself (a CID that does not parse, a bad path)."""


class InvalidInput(ServiceError):
    status = 422
    code = "invalid"


class NotFound(ServiceError):
    status = 404
    code = "not-found"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class Unavailable(ServiceError):
    status = 503
    code = "unavailable"


class RetrievalTimeout(ServiceError):
    """Content neither here nor found on the network in time."""

    status = 504
    code = "retrieval-timeout"


class BridgeFailure(ServiceError):
    """A bridge said no, or could not be reached: ``code`` is the bridge's reason (see
    protocols.bridge) and ``bridge`` the peer that gave it, if one did."""

    def __init__(self, status: int, code: str, detail: str, bridge: str | None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.bridge = bridge


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Record]
    next: str | None


@dataclass(frozen=True, slots=True)
class LogEvent:
    id: int
    type: str
    data: dict[str, Any]


class NodeInfo(Protocol):
    @property
    def peer_id(self) -> str: ...

    def addrs(self) -> list[str]: ...

    def peers(self) -> list[dict[str, Any]]: ...

    async def connect(self, multiaddr: str) -> str: ...

    def status(self) -> dict[str, Any]: ...


class Market(Protocol):
    def find(
        self,
        *,
        query: str | None,
        category: str | None,
        author: str | None,
        limit: int,
        cursor: str | None,
        currency: str | None = None,
        min_price: int | None = None,
        max_price: int | None = None,
    ) -> Page: ...

    def categories(self) -> list[tuple[str, int]]:
        """The most used categories, with how many listings each has."""
        ...

    def get(self, listing_id: str) -> Record: ...

    async def create(self, fields: dict[str, Any]) -> Record: ...

    async def update(self, listing_id: str, fields: dict[str, Any]) -> Record: ...

    async def delete(self, listing_id: str) -> None: ...


class Channels(Protocol):
    def read(self, channel: str, *, limit: int, cursor: str | None) -> Page: ...

    async def post(self, channel: str, text: str, reply_to: str | None) -> Record: ...


class Profiles(Protocol):
    def get(self, author: str) -> Record: ...

    async def set(
        self,
        name: str,
        avatar: str | None = None,
        wallet: str | None = None,
        wallet_sig: bytes | None = None,
    ) -> Record: ...

    def outdated(self) -> bool:
        """Whether this node's profile lacks what the node adds to it (keys, bridges)."""
        ...

    async def republish(self) -> Record:
        """This node's profile again, with its current direct-message key."""
        ...


class EventLog(Protocol):
    def after(self, event_id: int, limit: int) -> list[LogEvent]: ...

    def last_id(self) -> int: ...

    async def wait_after(self, event_id: int) -> None:
        """Return once an event with id > event_id exists."""
        ...


@dataclass(frozen=True, slots=True)
class ContentNode:
    """A resolved piece of content. ``kind``: "file", "directory" or "block" (anything that is
    not UnixFS, served raw). ``handle`` is the content service's own, passed back to it."""

    cid: Cid
    kind: str
    size: int
    handle: object


@dataclass(frozen=True, slots=True)
class ContentEntry:
    name: str
    cid: Cid
    size: int | None


@dataclass(frozen=True, slots=True)
class Upload:
    """One uploaded file: its path inside the upload ("a.jpg", "dir/b.txt") and its bytes; or
    an (empty) directory, sent as a part of type application/x-directory as Kubo's API does."""

    path: str
    file: IO[bytes]
    is_directory: bool = False


class Content(Protocol):
    async def resolve(self, root: Cid, segments: list[str]) -> ContentNode: ...

    def read(self, node: ContentNode, start: int, end: int | None) -> AsyncIterator[bytes]: ...

    def list_directory(self, node: ContentNode) -> AsyncIterator[ContentEntry]: ...

    async def block(self, cid: Cid) -> bytes: ...

    def car(self, root: Cid, segments: list[str]) -> AsyncIterator[bytes]: ...

    async def add(
        self,
        uploads: list[Upload],
        *,
        profile: str | None,
        pin: bool,
        wrap: bool,
        owner: str = ...,
    ) -> dict[str, Any]: ...

    async def import_car(self, stream: IO[bytes], *, pin: bool) -> list[Cid]: ...

    async def pin(self, cid: Cid) -> None: ...

    async def unpin(self, cid: Cid, owner: str = ...) -> bool: ...

    def pins(self) -> list[dict[str, Any]]: ...

    async def gc(self) -> dict[str, int]: ...

    def stats(self) -> dict[str, Any]: ...

    @property
    def max_upload_bytes(self) -> int: ...


class Governance(Protocol):
    async def info(self) -> dict[str, Any]: ...

    async def proposals(self) -> list[dict[str, Any]]: ...

    async def propose(
        self, targets: list[str], values: list[int], calldatas: list[bytes], description: str
    ) -> dict[str, Any]: ...

    async def act(self, proposal_id: int, action: str) -> dict[str, Any]: ...

    async def proposal(self, proposal_id: int) -> dict[str, Any]: ...

    async def ballot_typed_data(
        self, proposal_id: int, voter: str, support: int
    ) -> dict[str, Any]: ...

    async def vote(self, proposal_id: int, support: int) -> Record:
        """A ballot signed by the node's own wallet."""
        ...

    async def submit_ballot(
        self, proposal_id: int, voter: str, support: int, signature: bytes
    ) -> Record: ...


class DirectMessage(Protocol):
    """A message as the member sees it (storage.dms.DirectMessage)."""

    def to_json(self) -> dict[str, Any]: ...


class DirectMessages(Protocol):
    def conversations(self) -> list[dict[str, Any]]: ...

    def messages(self, conversation: str, limit: int) -> Sequence[DirectMessage]:
        """Oldest first."""
        ...

    def mark_read(self, conversation: str) -> int: ...

    def peer_of(self, conversation: str) -> str: ...

    def rotate_key(self) -> None:
        """A new direct-message key (older ones still open older mail)."""
        ...

    async def send(self, to: str, text: str, listing: str | None = None) -> DirectMessage:
        """The stored message: delivered, or sent and in the outbox."""
        ...


class Payments(Protocol):
    async def pay(self, listing: str) -> dict[str, Any]:
        """Start paying for a listing through a Stripe bridge: the PaymentIntent's client
        secret and the order."""
        ...

    def orders(self) -> list[dict[str, Any]]: ...

    def order(self, payment_intent: str) -> dict[str, Any]: ...

    async def refund(self, payment_intent: str, amount: int | None) -> dict[str, Any]: ...


class Assistant(Protocol):
    """AI through a bridge (draft, ask, embed: streamed as dicts with a "type"), and
    recommendations that work without one."""

    def draft(self, notes: str, title: str, category: str) -> AsyncIterator[dict[str, Any]]: ...

    def ask(self, question: str) -> AsyncIterator[dict[str, Any]]: ...

    async def embed(self, texts: list[str]) -> dict[str, Any]: ...

    async def similar(self, listing: str, limit: int) -> dict[str, Any]: ...

    async def for_you(self, limit: int) -> dict[str, Any]: ...


class StripeWebhooks(Protocol):
    async def receive(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        """Act on a webhook from Stripe; ServiceError (with its status) if refused."""
        ...


class Bridges(Protocol):
    def known(self) -> list[dict[str, Any]]: ...

    def running(self) -> list[dict[str, Any]]: ...

    @property
    def webhooks(self) -> StripeWebhooks | None: ...


@dataclass(frozen=True)
class Services:
    node: NodeInfo
    market: Market
    channels: Channels
    profiles: Profiles
    events: EventLog
    content: Content
    governance: Governance
    dms: DirectMessages
    payments: Payments
    assistant: Assistant
    bridges: Bridges
