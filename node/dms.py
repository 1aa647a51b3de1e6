"""Direct messages through the node: sealing and sending, the outbox that retries until a
message is delivered, and the handler that takes messages addressed to this member.

Delivery here is direct, over ``/zion/dm/1.0.0`` to the recipient's node: one stream per
message, one request frame, one reply frame. A message that cannot be delivered stays in the
outbox and is retried with backoff until it is delivered or MAX_UNDELIVERED_MS have passed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from zion.gateway.services import InvalidInput, NotFound
from zion.node.clock import now_ms
from zion.node.dmkeys import DmKeyring
from zion.node.framed import ByteStream, FramedStream, StreamClosed
from zion.protocols import dm, identity
from zion.protocols.errors import ProtocolError
from zion.protocols.records import PROFILE_SUBJECT, ProfileBody
from zion.storage.dms import DirectMessage, DmStore, Pending
from zion.storage.records import RecordStore

log = logging.getLogger(__name__)

#: How long one delivery attempt (dial, send, reply) may take.
DELIVERY_TIMEOUT_S: Final = 10.0
#: How long an inbound request may take to arrive.
INBOUND_TIMEOUT_S: Final = 10.0
#: How often the outbox looks for messages due for another attempt.
OUTBOX_POLL_S: Final = 1.0
#: Messages tried at once by the outbox.
OUTBOX_BATCH: Final = 32
#: Backoff between attempts: doubling from the first, up to the last.
FIRST_RETRY_MS: Final = 2_000
MAX_RETRY_MS: Final = 5 * 60_000
#: A message not delivered within this long fails (and says so).
MAX_UNDELIVERED_MS: Final = 7 * 24 * 3600 * 1000
#: Profiles searched when a recipient is given by name.
MAX_NAME_LOOKUP: Final = 10_000

OpenStream = Callable[[str, str], Awaitable[Any]]


class DmService:
    def __init__(
        self,
        store: DmStore,
        records: RecordStore,
        keyring: DmKeyring,
        key: Ed25519PrivateKey,
        open_stream: OpenStream,
        notify: Callable[[], None],
    ) -> None:
        self._store = store
        self._records = records
        self._keyring = keyring
        self._key = key
        self._peer_id = identity.peer_id_of(key)
        self._open_stream = open_stream
        self._notify = notify
        self._wake = trio.Event()

    # --- what the API calls --------------------------------------------------------------

    def conversations(self) -> list[dict[str, Any]]:
        items = self._store.conversations()
        for item in items:
            item["name"] = self._name_of(item["peer"])
        return items

    def messages(self, conversation: str, limit: int) -> list[DirectMessage]:
        return self._store.messages(_conversation(conversation), limit)

    def mark_read(self, conversation: str) -> int:
        count = self._store.mark_read(_conversation(conversation), now_ms())
        if count:
            self._notify()
        return count

    def peer_of(self, conversation: str) -> str:
        items = self._store.messages(_conversation(conversation), 1)
        if not items:
            raise NotFound(f"no conversation {conversation[:40]!r}")
        return items[0].peer

    async def send(self, to: str, text: str, listing: str | None = None) -> DirectMessage:
        """Seal a message to ``to`` (a peer ID or a profile name) and try to deliver it now;
        if that fails it stays queued and the outbox retries."""
        recipient = self._resolve(to)
        if recipient == self._peer_id:
            raise InvalidInput("that is this node's own member")
        public_key = self._key_of(recipient)
        try:
            envelope, message = dm.seal(
                self._key,
                recipient,
                public_key,
                text=text,
                sent=now_ms(),
                conversation=dm.conversation_id(self._peer_id, recipient),
                listing=listing,
            )
        except ProtocolError as exc:
            raise InvalidInput(exc.detail) from None
        stored = self._store.add_outgoing(message, dm.encode_envelope(envelope), now_ms())
        self._notify()
        pending = Pending(message.id, recipient, dm.encode_envelope(envelope), 0, message.sent)
        await self._attempt(pending)
        found = self._store.get(message.id)
        return found if found is not None else stored

    # --- the outbox ----------------------------------------------------------------------

    async def run(self) -> None:
        """Retry what is due, forever (owned by the node's nursery)."""
        while True:
            due = self._store.due(now_ms(), OUTBOX_BATCH)
            if due:
                async with trio.open_nursery() as nursery:
                    for pending in due:
                        nursery.start_soon(self._attempt, pending)
            with trio.move_on_after(OUTBOX_POLL_S):
                await self._wake.wait()
            self._wake = trio.Event()

    def peer_connected(self, peer_id: str) -> None:
        """Someone connected: messages waiting for them need not wait for their backoff."""
        self._store.due_now(peer_id, now_ms())
        self._wake.set()

    async def _attempt(self, pending: Pending) -> None:
        reason = await self._deliver(pending.peer, pending.envelope)
        now = now_ms()
        if reason is None:
            self._store.delivered(pending.id, now)
        elif now - pending.sent > MAX_UNDELIVERED_MS:
            days = MAX_UNDELIVERED_MS // (24 * 3600 * 1000)
            self._store.failed(pending.id, f"not delivered within {days} days: {reason}", now)
        elif reason.startswith("refused:"):
            self._store.failed(pending.id, reason, now)  # the recipient said no: final
        else:
            backoff = min(FIRST_RETRY_MS * 2**pending.attempts, MAX_RETRY_MS)
            self._store.retry_later(pending.id, now + backoff, reason)
            return
        self._notify()

    async def _deliver(self, peer_id: str, envelope: bytes) -> str | None:
        """None once the recipient's node took it; else why not (``refused: ...`` if the
        recipient answered no, which no retry changes)."""
        stream = None
        try:
            with trio.fail_after(DELIVERY_TIMEOUT_S):
                stream = await self._open_stream(peer_id, dm.PROTOCOL_ID)
                framed = FramedStream(stream, dm.MAX_FRAME_BYTES)
                await framed.send(dm.encode_deliver(dm.decode_envelope(envelope)))
                reason = dm.decode_reply(await framed.receive())
                await stream.close()
        except trio.TooSlowError:
            return "the recipient's node did not answer in time"
        except (ProtocolError, StreamClosed) as exc:
            return f"bad reply from the recipient's node: {exc}"
        except Exception as exc:  # dialing fails in many ways in py-libp2p
            return f"the recipient's node is not reachable ({type(exc).__name__})"
        finally:
            if stream is not None:
                await _close_quietly(stream)
        return None if reason is None else f"refused: {reason}"

    # --- messages to us ------------------------------------------------------------------

    async def serve(self, stream: ByteStream) -> None:
        """One inbound ``deliver`` request: open, check, store, answer."""
        framed = FramedStream(stream, dm.MAX_FRAME_BYTES)
        try:
            with trio.fail_after(INBOUND_TIMEOUT_S):
                request = await framed.receive()
                await framed.send(dm.encode_reply(self._take(request)))
                await stream.close()
        except (ProtocolError, StreamClosed, trio.TooSlowError) as exc:
            log.info("dm: dropping an inbound request: %s", exc)
            await _reset(stream)
        except Exception as exc:  # the peer vanished mid-stream
            log.debug("dm: inbound request ended: %r", exc)
            await _reset(stream)

    def _take(self, request: bytes) -> str | None:
        try:
            envelope = dm.decode_request(request)
            message = dm.open_envelope(envelope, self._peer_id, self._keyring.keys)
        except ProtocolError as exc:
            return exc.reason
        if self._store.add_incoming(message, now_ms()):
            self._notify()
        return None  # stored, or a duplicate of one stored: either way, delivered

    # --- recipients ----------------------------------------------------------------------

    def _resolve(self, to: str) -> str:
        try:
            identity.public_key_from_peer_id(to)
            return to
        except ProtocolError:
            pass
        matches = {
            record.author
            for record in self._records.of_kind("profile", MAX_NAME_LOOKUP)
            if isinstance(record.body, ProfileBody) and record.body.name == to
        }
        if not matches:
            raise NotFound(f"no member called {to[:60]!r} (give a peer ID or a profile name)")
        if len(matches) > 1:
            raise InvalidInput(f"{len(matches)} members are called {to[:60]!r}: give a peer ID")
        return matches.pop()

    def _key_of(self, peer_id: str) -> X25519PublicKey:
        record = self._records.head(peer_id, PROFILE_SUBJECT)
        body = None if record is None else record.body
        if not isinstance(body, ProfileBody) or body.enc_key is None:
            raise InvalidInput(
                f"{peer_id[:60]} has published no direct-message key yet (it comes with their"
                " profile: they need to set one, and their profile needs to reach this node)"
            )
        return X25519PublicKey.from_public_bytes(body.enc_key)

    def _name_of(self, peer_id: str) -> str | None:
        record = self._records.head(peer_id, PROFILE_SUBJECT)
        return record.body.name if record and isinstance(record.body, ProfileBody) else None


def _conversation(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != dm.CONVERSATION_ID_BYTES:
        raise InvalidInput("a conversation ID is 32 hex digits")
    return raw


async def _close_quietly(stream: Any) -> None:
    try:
        await stream.close()
    except Exception:  # already closed or reset: nothing to do
        return


async def _reset(stream: Any) -> None:
    try:
        await stream.reset()
    except Exception:  # already gone
        return
