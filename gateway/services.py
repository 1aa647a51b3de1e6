"""What the gateway needs from the node, declared here so the gateway never imports the node.

The node hands concrete services to ``build_app``; they raise the ServiceError subclasses below
for anything the user must hear about, and the gateway turns them into problem documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from zion.protocols.records import Record


class ServiceError(Exception):
    status = 400
    code = "bad-request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(ServiceError):
    status = 422
    code = "invalid"


class NotFound(ServiceError):
    status = 404
    code = "not-found"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class Unavailable(ServiceError):
    status = 503
    code = "unavailable"


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
    ) -> Page: ...

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


class EventLog(Protocol):
    def after(self, event_id: int, limit: int) -> list[LogEvent]: ...

    def last_id(self) -> int: ...

    async def wait_after(self, event_id: int) -> None:
        """Return once an event with id > event_id exists."""
        ...


@dataclass(frozen=True)
class Services:
    node: NodeInfo
    market: Market
    channels: Channels
    profiles: Profiles
    events: EventLog
