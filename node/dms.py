"""Direct messages through the node: sealing and sending, the outbox that retries until a
message is delivered, and the handler that takes messages addressed to this member.

Delivery is direct, over ``/zion/dm/1.0.0`` to the recipient's node: one stream per
message, one request frame, one reply frame. A message that cannot be delivered stays in the
outbox and is retried with backoff until it is delivered or MAX_UNDELIVERED_MS have passed;
meanwhile it is also left with connected mailbox nodes (``/zion/dm-mailbox/1.0.0``), which
hold it sealed until the recipient's node comes by and fetches it. A node with
``[dm] mailbox = true`` is such a mailbox.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from zion.gateway.services import InvalidInput, NotFound
from zion.node.clock import now_ms
from zion.node.dmkeys import DmKeyring
from zion.node.framed import FramedStream, StreamClosed, reset_stream
from zion.node.ratelimit import PeerRateLimiter
from zion.protocols import dm, identity
from zion.protocols.errors import ProtocolError
from zion.protocols.records import PROFILE_SUBJECT, ProfileBody
from zion.storage.dms import DirectMessage, DmStore, InboxFull, MailboxLimits, Pending, Status
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
#: The outbox waits this long before its own first try of a message send() is trying.
FIRST_ATTEMPT_WINDOW_MS: Final = int(DELIVERY_TIMEOUT_S * 1000) + 2_000
#: A message not delivered within this long fails (and says so).
MAX_UNDELIVERED_MS: Final = 7 * 24 * 3600 * 1000
#: Profiles searched when a recipient is given by name.
MAX_NAME_LOOKUP: Final = 10_000
#: Mailboxes a message is left with (more copies: more chances one is online later).
MAX_MAILBOXES: Final = 2
#: How often this node asks its connected mailboxes for messages held for it.
MAILBOX_POLL_S: Final = 30.0
#: Fetch rounds per mailbox per poll (each hands over up to dm.MAX_FETCH messages).
MAX_FETCH_ROUNDS: Final = 16
#: Receipts waiting to be sent; beyond this they are dropped (they are a courtesy: the
#: sender's own retries find out about delivery anyway).
MAX_QUEUED_RECEIPTS: Final = 1024
#: Requests one peer may make: messages and receipts to us, and (as a mailbox) messages to
#: hold for others. Beyond these the answer is RATE_LIMITED, which senders retry later.
INBOUND_PER_S: Final = 5.0
INBOUND_BURST: Final = 50
MAILBOX_STORES_PER_S: Final = 1.0
MAILBOX_STORE_BURST: Final = 20
RATE_LIMITED: Final = "rate-limited"
#: Unread messages one sender may have here; beyond it the answer is INBOX_FULL (retried).
MAX_UNREAD_PER_SENDER: Final = 1000
INBOX_FULL: Final = "inbox-full"
#: Answers that mean "not now" rather than "no": the sender keeps the message and retries.
RETRYABLE: Final = frozenset({RATE_LIMITED, INBOX_FULL})
#: How long closing a stream may take before we give up on it.
CLOSE_TIMEOUT_S: Final = 2.0
#: Reasons a message from the future is refused: the sender's clock is off.
FROM_THE_FUTURE: Final = "from-the-future"
_DAY_MS: Final = 24 * 3600 * 1000

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
        mailbox: MailboxLimits | None = None,
        mailbox_peers: Callable[[], list[str]] = list,
        read_receipts: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``mailbox``: hold messages for others, within these bounds (None: do not);
        ``mailbox_peers``: the connected peers that are mailboxes; ``read_receipts``: tell
        senders when their messages are read."""
        self._store = store
        self._records = records
        self._keyring = keyring
        self._key = key
        self._peer_id = identity.peer_id_of(key)
        self._open_stream = open_stream
        self._notify = notify
        self._wake = trio.Event()
        self._mailbox = mailbox
        self._mailbox_peers = mailbox_peers
        self._fetch_wake = trio.Event()
        self._read_receipts = read_receipts
        self._clock = clock
        self._inbound_limit = PeerRateLimiter(INBOUND_PER_S, INBOUND_BURST)
        self._store_limit = PeerRateLimiter(MAILBOX_STORES_PER_S, MAILBOX_STORE_BURST)
        self._receipts_in, self._receipts_out = trio.open_memory_channel[tuple[str, dm.Receipt]](
            MAX_QUEUED_RECEIPTS
        )

    # --- what the API calls --------------------------------------------------------------

    def conversations(self) -> list[dict[str, Any]]:
        items = self._store.conversations()
        for item in items:
            item["name"] = self._name_of(item["peer"])
        return items

    def messages(self, conversation: str, limit: int) -> list[DirectMessage]:
        return self._store.messages(_conversation(conversation), limit)

    def mark_read(self, conversation: str) -> int:
        read = self._store.mark_read(_conversation(conversation), now_ms())
        if read:
            self._notify()
        if read and self._read_receipts:
            by_sender: dict[str, list[bytes]] = {}
            for message_id, sender in read:
                by_sender.setdefault(sender, []).append(message_id)
            for sender, ids in by_sender.items():
                self._queue_receipt(sender, ids, read=True)
        return len(read)

    def rotate_key(self) -> None:
        self._keyring.rotate()

    def peer_of(self, conversation: str) -> str:
        items = self._store.messages(_conversation(conversation), 1)
        if not items:
            raise NotFound(f"no conversation {conversation[:40]!r}")
        return items[0].peer

    async def send(self, to: str, text: str, listing: str | None = None) -> DirectMessage:
        """Seal a message to ``to`` (a peer ID or a profile name) and try to deliver it now;
        if that fails it stays in the outbox (status sent), which retries."""
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
                listing=listing,
            )
        except ProtocolError as exc:
            raise InvalidInput(exc.detail) from None
        except ValueError as exc:  # HPKE refuses a degenerate published key (all zeros, ...)
            raise InvalidInput(f"{recipient[:60]} published an unusable key: {exc}") from None
        wire = dm.encode_envelope(envelope)
        now = now_ms()
        # The outbox leaves it alone while this first attempt runs (and it is the outbox
        # that leaves an undelivered message with mailboxes, so this call stays short).
        stored = self._store.add_outgoing(message, wire, now, now + FIRST_ATTEMPT_WINDOW_MS)
        self._notify()
        await self._attempt(Pending(message.id, recipient, wire, 0, message.sent), mailboxes=False)
        found = self._store.get(message.id)
        return found if found is not None else stored

    # --- the outbox ----------------------------------------------------------------------

    async def run(self) -> None:
        """The outbox and the receipts, forever (owned by the node's nursery)."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._send_receipts)
            await self._retry_due()

    async def _retry_due(self) -> None:
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
        """Someone connected: messages waiting for them need not wait for their backoff, and
        if it is a mailbox it may hold some for us."""
        self._store.due_now(peer_id, now_ms())
        self._wake.set()
        self._fetch_wake.set()

    async def fetch_periodically(self) -> None:
        """Ask connected mailboxes for messages held for us: on every new connection (once
        identify has told which peers are mailboxes) and every MAILBOX_POLL_S."""
        while True:
            with trio.move_on_after(MAILBOX_POLL_S):
                await self._fetch_wake.wait()
            self._fetch_wake = trio.Event()
            try:
                await self.fetch_from_mailboxes()
            except Exception:  # a fetch must not stop the node; the next poll tries again
                log.exception("dm: fetching from mailboxes failed")

    async def fetch_from_mailboxes(self) -> int:
        taken = 0
        for peer in self._mailbox_peers():
            taken += await self._fetch_from(peer)
        return taken

    async def _attempt(self, pending: Pending, *, mailboxes: bool = True) -> None:
        """One try; never raises (it runs in the outbox's nursery): a surprise is logged and
        the message tried again later."""
        try:
            await self._try(pending, mailboxes)
        except Exception as exc:
            log.exception("dm: attempt to deliver a message failed unexpectedly")
            backoff = min(FIRST_RETRY_MS * 2**pending.attempts, MAX_RETRY_MS)
            self._store.retry_later(pending.id, now_ms() + backoff, f"internal error: {exc!r}")

    async def _try(self, pending: Pending, mailboxes: bool) -> None:
        reason = await self._deliver(pending.peer, pending.envelope)
        if reason is not None and not reason.startswith("refused:") and mailboxes:
            await self._leave_with_mailboxes(pending)
        now = now_ms()
        if reason is None:
            self._store.delivered(pending.id, now)
        elif now - pending.sent > MAX_UNDELIVERED_MS:
            days = MAX_UNDELIVERED_MS // _DAY_MS
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
        if reason in RETRYABLE:
            return f"the recipient's node says {reason}; retrying later"
        return None if reason is None else f"refused: {reason}"

    def _queue_receipt(self, peer: str, ids: list[bytes], *, read: bool) -> None:
        for start in range(0, len(ids), dm.MAX_RECEIPT_IDS):
            receipt = dm.Receipt(ids[start : start + dm.MAX_RECEIPT_IDS], read)
            try:
                self._receipts_in.send_nowait((peer, receipt))
            except trio.WouldBlock:
                log.info("dm: too many receipts waiting; dropping one for %s", peer)

    async def _send_receipts(self) -> None:
        async for peer, receipt in self._receipts_out:
            request = dm.encode_receipt(receipt.ids, receipt.read)
            reason = await self._exchange(peer, dm.PROTOCOL_ID, request)
            if reason is not None:
                log.debug("dm: receipt to %s not taken: %s", peer, reason)

    async def _exchange(self, peer_id: str, protocol: str, request: bytes) -> str | None:
        """One request/reply with ``peer_id``; None if it took it, else why not."""
        stream = None
        try:
            with trio.fail_after(DELIVERY_TIMEOUT_S):
                stream = await self._open_stream(peer_id, protocol)
                framed = FramedStream(stream, dm.MAX_FRAME_BYTES)
                await framed.send(request)
                return dm.decode_reply(await framed.receive())
        except Exception as exc:  # the peer is gone or broken: a receipt is best effort
            return repr(exc)
        finally:
            if stream is not None:
                await _close_quietly(stream)

    async def _leave_with_mailboxes(self, pending: Pending) -> None:
        current = self._store.get(pending.id)
        if current is None or current.status != Status.SENT:
            return  # left with a mailbox already, or settled
        mailboxes = [p for p in self._mailbox_peers() if p != pending.peer][:MAX_MAILBOXES]
        envelope = dm.decode_envelope(pending.envelope)
        stored = False
        for mailbox in mailboxes:
            reply = await self._request(mailbox, dm.encode_store(envelope))
            try:
                stored |= reply is not None and dm.decode_reply(reply) is None
            except ProtocolError as exc:  # a peer that only claims to be a mailbox
                log.info("dm: bad reply from mailbox %s: %s", mailbox, exc)
        if stored:
            self._store.stored_by_mailbox(pending.id, now_ms())
            self._notify()

    async def _fetch_from(self, mailbox: str) -> int:
        taken = 0
        for _ in range(MAX_FETCH_ROUNDS):
            reply = await self._request(mailbox, dm.encode_fetch(), dm.MAX_MAILBOX_FRAME_BYTES)
            try:
                envelopes = [] if reply is None else dm.decode_fetched(reply)
            except ProtocolError as exc:
                log.info("dm: bad fetch reply from mailbox %s: %s", mailbox, exc)
                return taken
            if not envelopes:
                return taken
            delivered: dict[str, list[bytes]] = {}
            for raw in envelopes:
                # Whatever does not open is dropped too: it will not open next time either.
                _, message = self._take_envelope(raw)
                if message is not None:
                    taken += 1
                    delivered.setdefault(message.sender, []).append(message.id)
            # The senders learn it arrived (they may be offline: then their retries will).
            for sender, ids in delivered.items():
                self._queue_receipt(sender, ids, read=False)
            await self._request(mailbox, dm.encode_ack([dm.envelope_hash(e) for e in envelopes]))
            if len(envelopes) < dm.MAX_FETCH:
                return taken
        return taken

    async def _request(
        self, peer_id: str, request: bytes, max_reply: int = dm.MAX_FRAME_BYTES
    ) -> bytes | None:
        """One request to a mailbox and its reply frame; None if it did not work out."""
        stream = None
        try:
            with trio.fail_after(DELIVERY_TIMEOUT_S):
                stream = await self._open_stream(peer_id, dm.MAILBOX_PROTOCOL_ID)
                framed = FramedStream(stream, max_reply)
                await framed.send(request)
                return await framed.receive()
        except Exception as exc:  # a mailbox that fails is just not used this time
            log.debug("dm: mailbox %s: %r", peer_id, exc)
            return None
        finally:
            if stream is not None:
                await _close_quietly(stream)

    async def serve_mailbox(self, stream: Any) -> None:
        """One mailbox request: hold a message for someone, or hand over / forget what is
        held for the peer asking (the connection authenticates who that is)."""
        framed = FramedStream(stream, dm.MAX_FRAME_BYTES)
        asker = str(stream.muxed_conn.peer_id.to_base58())
        try:
            with trio.fail_after(INBOUND_TIMEOUT_S):
                op, argument = dm.decode_mailbox_request(await framed.receive())
                await framed.send(self._mailbox_answer(asker, op, argument))
                await stream.close()
        except (ProtocolError, StreamClosed, trio.TooSlowError) as exc:
            log.info("dm: dropping a mailbox request from %s: %s", asker, exc)
            await reset_stream(stream)
        except Exception as exc:  # the peer vanished mid-stream
            log.debug("dm: mailbox request ended: %r", exc)
            await reset_stream(stream)

    def _mailbox_answer(self, asker: str, op: str, argument: Any) -> bytes:
        if not self._inbound_limit.allow(asker, self._clock()):
            return dm.encode_reply(RATE_LIMITED)
        if op == "fetch":
            assert self._mailbox is not None  # only mailboxes serve this protocol
            oldest = now_ms() - self._mailbox.max_age_ms
            held = self._store.mailbox_for(asker, dm.MAX_FETCH, oldest)
            return dm.encode_fetched([envelope for _, envelope in held])
        if op == "ack":
            self._store.mailbox_drop(asker, argument)
            return dm.encode_reply(None)
        assert isinstance(argument, dm.Envelope)
        if argument.recipient == self._peer_id:
            return dm.encode_reply(self._take_envelope(dm.encode_envelope(argument))[0])
        if self._mailbox is None:
            return dm.encode_reply("not a mailbox")
        if not self._store_limit.allow(asker, self._clock()):
            return dm.encode_reply(RATE_LIMITED)
        self._store.mailbox_put(
            argument.recipient, dm.encode_envelope(argument), now_ms(), self._mailbox
        )
        return dm.encode_reply(None)

    # --- messages to us ------------------------------------------------------------------

    async def serve(self, stream: Any) -> None:
        """One inbound request: a message to open, check and store, or a receipt for
        messages we sent (taken only from their recipient: the connection says who)."""
        framed = FramedStream(stream, dm.MAX_FRAME_BYTES)
        asker = str(stream.muxed_conn.peer_id.to_base58())
        try:
            with trio.fail_after(INBOUND_TIMEOUT_S):
                request = await framed.receive()
                await framed.send(dm.encode_reply(self._answer(asker, request)))
                await stream.close()
        except (ProtocolError, StreamClosed, trio.TooSlowError) as exc:
            log.info("dm: dropping an inbound request: %s", exc)
            await reset_stream(stream)
        except Exception as exc:  # the peer vanished mid-stream
            log.debug("dm: inbound request ended: %r", exc)
            await reset_stream(stream)

    def _answer(self, asker: str, request: bytes) -> str | None:
        if not self._inbound_limit.allow(asker, self._clock()):
            return RATE_LIMITED
        try:
            decoded = dm.decode_request(request)
        except ProtocolError as exc:
            return exc.reason
        if isinstance(decoded, dm.Receipt):
            if self._store.receipt(asker, decoded.ids, decoded.read, now_ms()):
                self._notify()
            return None
        return self._take_envelope(dm.encode_envelope(decoded))[0]

    def _take_envelope(self, raw: bytes) -> tuple[str | None, dm.Message | None]:
        """Open and keep a message for us: (None, message) when kept (or kept before), else
        (why not, None). Never raises: what a peer sends must not stop the node."""
        try:
            envelope = dm.decode_envelope(raw)
            message = dm.open_envelope(envelope, self._peer_id, self._keyring.keys)
        except ProtocolError as exc:
            return exc.reason, None
        except Exception:
            log.exception("dm: a message that does not open in an unexpected way")
            return "malformed", None
        now = now_ms()
        if message.sent > now + dm.MAX_CLOCK_AHEAD_MS:
            return FROM_THE_FUTURE, None
        try:
            if self._store.add_incoming(message, now, MAX_UNREAD_PER_SENDER):
                self._notify()
        except InboxFull:
            return INBOX_FULL, None
        return None, message

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
    with trio.move_on_after(CLOSE_TIMEOUT_S):
        try:
            await stream.close()
        except Exception:  # already closed or reset: nothing to do
            return
