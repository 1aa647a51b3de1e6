"""Bitswap: trading blocks with Zion, Helia and Kubo nodes.

Serving: a peer's wants are kept in a bounded ledger; blocks we have go back at once, blocks
we lack get a DontHave if asked, and are sent later if they arrive while still wanted.
Fetching: a want-block goes to every connected peer (again to peers that connect later) and,
when no block has come after PROVIDER_SEARCH_DELAY_S, to providers found in the DHT. The first
copy that arrives is stored and every waiter for it wakes.

Every message travels on a new stream opened by its sender and closed after writing: Helia
never reads on a stream it opened, nor writes on one it accepted (docs/notes/bitswap-interop.md).
Costs a peer can impose are bounded: message size (decode), ledger size, queued bytes per peer
(excess is dropped; the peer will ask again), and blocks nobody wanted are never stored.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

import trio

from zion.node.framed import FramedStream, StreamClosed
from zion.node.network import Network
from zion.protocols import bitswap, limits
from zion.protocols.bitswap import Message, Want, WantType
from zion.protocols.cid import Cid
from zion.protocols.errors import ProtocolError
from zion.protocols.framing import encode_frame
from zion.storage.blockstore import Blockstore
from zion.storage.errors import StorageError

log = logging.getLogger(__name__)

#: Bytes waiting to go to one peer; past this, replies to it are dropped.
MAX_QUEUED_BYTES_PER_PEER: Final = 16 * 1024 * 1024
#: Blocks this node is waiting for at once.
MAX_ACTIVE_WANTS: Final = 4096
#: Blocks up to this size answer a want-have directly (as Helia does).
SEND_BLOCK_FOR_HAVE_BELOW: Final = 1024
#: How often active wants go to peers that connected since they were sent.
REBROADCAST_INTERVAL_S: Final = 0.5
#: A want unanswered this long is sent again to every peer (a reply may have been dropped).
REWANT_INTERVAL_S: Final = 5.0
#: A prefetched block nobody has asked for after this long is no longer wanted.
PREFETCH_TTL_S: Final = 30.0
#: A want still open this long also asks the DHT for providers.
PROVIDER_SEARCH_DELAY_S: Final = 1.0
PROVIDERS_PER_SEARCH: Final = 3
#: An inbound stream silent this long is dropped (Kubo keeps its want stream open).
INBOUND_IDLE_TIMEOUT_S: Final = 300.0
SEND_TIMEOUT_S: Final = 30.0


class BitswapBusy(Exception):
    """Too many blocks are being fetched at once; try again later."""


@dataclass
class BitswapStats:
    blocks_received: int = 0
    blocks_sent: int = 0
    bytes_sent: int = 0
    unwanted_blocks: int = 0
    rejected_messages: int = 0
    dropped_replies: int = 0


@dataclass
class _Wanted:
    cid: Cid
    done: trio.Event = field(default_factory=trio.Event)
    block: bytes | None = None
    waiters: int = 0
    #: Peers sent the want since it was last (re)broadcast, and every peer ever sent it
    #: (who must hear the cancel).
    sent_to: set[str] = field(default_factory=set)
    asked: set[str] = field(default_factory=set)
    searching: bool = False
    since: float = field(default_factory=trio.current_time)
    sent_at: float = 0.0


@dataclass
class _Outbox:
    messages: list[Message] = field(default_factory=list)
    queued_bytes: int = 0
    sending: bool = False


class Bitswap:
    def __init__(self, network: Network, store: Blockstore) -> None:
        self._network = network
        self._store = store
        self._wanted: dict[bytes, _Wanted] = {}
        self._ledgers: dict[str, OrderedDict[bytes, Want]] = {}
        self._outboxes: dict[str, _Outbox] = {}
        self._serving: set[str] = set()
        self._serve_again: set[str] = set()
        self._nursery: trio.Nursery | None = None
        self.stats = BitswapStats()

    def register(self) -> None:
        """Install the stream handlers; before connecting, so identify advertises Bitswap."""
        for protocol in bitswap.PROTOCOL_IDS:
            self._network.set_stream_handler(protocol, self._handle_stream)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            while True:
                await trio.sleep(REBROADCAST_INTERVAL_S)
                self._drop_stale_prefetches()
                self._broadcast_wants()

    # --- fetching ----------------------------------------------------------------------

    async def fetch(self, cid: Cid) -> bytes:
        """The block, from whichever peer sends it first. Cancel the caller to give up."""
        wanted = self._wanted.get(cid.multihash)
        if wanted is None:
            if len(self._wanted) >= MAX_ACTIVE_WANTS:
                raise BitswapBusy(f"{MAX_ACTIVE_WANTS} blocks are wanted already")
            wanted = self._wanted[cid.multihash] = _Wanted(cid)
        wanted.waiters += 1
        try:
            self._broadcast_wants()
            with trio.move_on_after(PROVIDER_SEARCH_DELAY_S):
                await wanted.done.wait()
            if not wanted.done.is_set() and not wanted.searching and self._nursery:
                wanted.searching = True
                self._nursery.start_soon(self._search_providers, wanted)
            await wanted.done.wait()
            assert wanted.block is not None
            return wanted.block
        finally:
            wanted.waiters -= 1
            if wanted.waiters == 0 and self._wanted.get(cid.multihash) is wanted:
                del self._wanted[cid.multihash]
                if not wanted.done.is_set():
                    self._cancel(wanted)

    def prefetch(self, cids: list[Cid]) -> None:
        """Want these blocks without waiting for them (a reader will ask for them soon):
        they are stored when they arrive; unclaimed wants lapse after PREFETCH_TTL_S."""
        for cid in cids:
            # Prefetching may use half the slots: the rest stay free for real reads.
            if cid.multihash not in self._wanted and len(self._wanted) < MAX_ACTIVE_WANTS // 2:
                self._wanted[cid.multihash] = _Wanted(cid)
        self._broadcast_wants()

    def _drop_stale_prefetches(self) -> None:
        now = trio.current_time()
        for key, wanted in list(self._wanted.items()):
            if wanted.waiters == 0 and (
                wanted.done.is_set() or now - wanted.since > PREFETCH_TTL_S
            ):
                del self._wanted[key]
                if not wanted.done.is_set():
                    self._cancel(wanted)

    def _broadcast_wants(self) -> None:
        peers = self._network.connected_peers()
        now = trio.current_time()
        for wanted in list(self._wanted.values()):
            if wanted.done.is_set():
                continue
            if now - wanted.sent_at > REWANT_INTERVAL_S:
                wanted.sent_to.clear()
                wanted.sent_at = now
            for peer in peers:
                if peer not in wanted.sent_to:
                    wanted.sent_to.add(peer)
                    wanted.asked.add(peer)
                    want = Want(wanted.cid, WantType.BLOCK, send_dont_have=True)
                    self._queue(peer, Message(wants=[want]))

    def _cancel(self, wanted: _Wanted) -> None:
        for peer in wanted.asked:
            self._queue(peer, Message(wants=[Want(wanted.cid, cancel=True)]))

    async def _search_providers(self, wanted: _Wanted) -> None:
        try:
            found = await self._network.connect_providers(
                wanted.cid.multihash, PROVIDERS_PER_SEARCH
            )
        except Exception as exc:
            log.debug("provider search for %s failed: %s", wanted.cid, exc)
            return
        if found and not wanted.done.is_set():
            log.debug("providers of %s: %s", wanted.cid, found)
            self._broadcast_wants()

    # --- receiving ---------------------------------------------------------------------

    async def _handle_stream(self, stream: Any) -> None:
        peer = str(stream.muxed_conn.peer_id.to_base58())
        framed = FramedStream(stream, limits.MAX_BITSWAP_MESSAGE_BYTES)
        try:
            while True:
                with trio.fail_after(INBOUND_IDLE_TIMEOUT_S):
                    frame = await framed.receive()
                await self._on_message(peer, bitswap.decode_message(frame))
        except StreamClosed:
            await stream.close()
        except ProtocolError as exc:
            self.stats.rejected_messages += 1
            log.info("bad bitswap message from %s: %s", peer, exc)
            await stream.reset()
        except (trio.TooSlowError, OSError, Exception) as exc:
            # A peer that vanished mid-stream (py-libp2p raises its own stream errors).
            log.debug("bitswap stream from %s ended: %s", peer, exc)
            await stream.reset()

    async def _on_message(self, peer: str, message: Message) -> None:
        for cid, block in message.blocks:
            await self._on_block(peer, cid, block)
        if message.wants or message.full:
            await self._on_wants(peer, message)

    async def _on_block(self, peer: str, cid: Cid, block: bytes) -> None:
        wanted = self._wanted.get(cid.multihash)
        if wanted is None or wanted.done.is_set():
            self.stats.unwanted_blocks += 1
            return
        # The CID was computed from these bytes when the message was decoded.
        try:
            await trio.to_thread.run_sync(lambda: self._store.put(cid, block, verify=False))
        except StorageError as exc:
            log.warning("cannot store block %s: %s", cid, exc)
            return
        self.stats.blocks_received += 1
        wanted.block = block
        wanted.done.set()
        others = wanted.asked - {peer}
        for other in others:
            self._queue(other, Message(wants=[Want(wanted.cid, cancel=True)]))
        self._serve_waiting_peers(cid, block)

    async def _on_wants(self, peer: str, message: Message) -> None:
        """Answer presences at once; blocks go through the peer's ledger, read from disk only
        as its outbox has room, so a peer wanting much costs MAX_QUEUED_BYTES_PER_PEER."""
        ledger = self._ledgers.setdefault(peer, OrderedDict())
        if message.full:
            ledger.clear()
        reply = Message()
        for want in message.wants:
            key = want.cid.multihash
            if want.cancel:
                ledger.pop(key, None)
                continue
            size = self._store.size(want.cid)
            if size is None and want.send_dont_have:
                reply.dont_haves.append(want.cid)
            elif size is not None and want.want_type == WantType.HAVE:
                if size >= SEND_BLOCK_FOR_HAVE_BELOW:
                    reply.haves.append(want.cid)
                    continue
                want = Want(want.cid)  # small enough: send the block itself
            ledger[key] = want
            ledger.move_to_end(key)
            while len(ledger) > limits.MAX_BITSWAP_WANTS:
                ledger.popitem(last=False)
        if not reply.is_empty():
            self._queue(peer, reply)
        await self._serve_from_ledger(peer)

    async def _serve_from_ledger(self, peer: str) -> None:
        """Queue the blocks ``peer`` wants that are here, while its outbox has room. One task
        per peer does it (others ask it to go again), so room checked is room used."""
        if peer in self._serving:
            self._serve_again.add(peer)
            return
        self._serving.add(peer)
        try:
            while True:
                self._serve_again.discard(peer)
                await self._serve_once(peer)
                if peer not in self._serve_again:
                    return
        finally:
            self._serving.discard(peer)

    async def _serve_once(self, peer: str) -> None:
        ledger = self._ledgers.get(peer)
        if not ledger:
            return
        for key, want in list(ledger.items()):
            size = self._store.size(want.cid)
            if size is None or want.want_type == WantType.HAVE:
                continue  # not here yet; or a want-have, answered when the block comes
            if not self._has_room(peer, size + bitswap.BLOCK_OVERHEAD):
                return
            ledger.pop(key, None)
            try:
                block = await trio.to_thread.run_sync(self._store.get, want.cid)
            except StorageError:
                continue
            self._queue(peer, Message(blocks=[(want.cid, block)]), force=True)

    def _serve_waiting_peers(self, cid: Cid, block: bytes) -> None:
        for peer, ledger in self._ledgers.items():
            want = ledger.get(cid.multihash)
            if want is None:
                continue
            if want.want_type == WantType.HAVE and len(block) >= SEND_BLOCK_FOR_HAVE_BELOW:
                del ledger[cid.multihash]
                self._queue(peer, Message(haves=[want.cid]))
            elif self._has_room(peer, len(block) + bitswap.BLOCK_OVERHEAD):
                del ledger[cid.multihash]
                self._queue(peer, Message(blocks=[(want.cid, block)]))

    def forget_peer(self, peer: str) -> None:
        """The peer is gone: drop its wants and whatever was queued for it."""
        self._ledgers.pop(peer, None)
        outbox = self._outboxes.get(peer)
        if outbox is not None:
            outbox.messages.clear()
            outbox.queued_bytes = 0
        for wanted in self._wanted.values():
            wanted.sent_to.discard(peer)
            wanted.asked.discard(peer)

    # --- sending -----------------------------------------------------------------------

    def _has_room(self, peer: str, size: int) -> bool:
        outbox = self._outboxes.get(peer)
        return outbox is None or outbox.queued_bytes + size <= MAX_QUEUED_BYTES_PER_PEER

    def _queue(self, peer: str, message: Message, *, force: bool = False) -> None:
        """Add to ``peer``'s outbox, or drop if full (``force``: room was checked before)."""
        size = _size(message)
        outbox = self._outboxes.setdefault(peer, _Outbox())
        if not force and outbox.queued_bytes + size > MAX_QUEUED_BYTES_PER_PEER:
            self.stats.dropped_replies += 1
            log.debug("dropped a message of %d bytes to %s: outbox full", size, peer)
            return
        outbox.messages.append(message)
        outbox.queued_bytes += size
        if not outbox.sending and self._nursery is not None:
            outbox.sending = True
            self._nursery.start_soon(self._send_all, peer, outbox)

    async def _send_all(self, peer: str, outbox: _Outbox) -> None:
        """Drain ``peer``'s outbox, one new stream per batch."""
        try:
            while outbox.messages:
                # The batch in flight no longer counts: a peer costs at most twice
                # MAX_QUEUED_BYTES_PER_PEER (queued plus being written).
                batch, outbox.messages = outbox.messages, []
                outbox.queued_bytes = 0
                frames = [encode_frame(bitswap.encode_message(m)) for m in _pack(batch)]
                with trio.fail_after(SEND_TIMEOUT_S):
                    stream = await self._network.open_stream(peer, bitswap.PROTOCOL_IDS)
                    try:
                        for frame in frames:
                            await stream.write(frame)
                        await stream.close()
                    except BaseException:
                        await stream.reset()
                        raise
                sent = sum(len(m.blocks) for m in batch)
                self.stats.blocks_sent += sent
                self.stats.bytes_sent += sum(len(f) for f in frames)
                await self._serve_from_ledger(peer)
        except Exception as exc:
            log.debug("cannot send bitswap messages to %s: %s", peer, exc)
            self.stats.dropped_replies += len(outbox.messages)
            outbox.messages.clear()
            outbox.queued_bytes = 0
        finally:
            outbox.sending = False
            if not outbox.messages:
                self._outboxes.pop(peer, None)


#: Bytes a want or a presence adds to a message (a CID and a few keys), rounded up.
_ENTRY_BYTES: Final = 64


def _size(message: Message) -> int:
    """Bytes ``message`` adds to an outbox, for the per-peer limit."""
    entries = len(message.wants) + len(message.haves) + len(message.dont_haves)
    blocks = sum(len(block) + bitswap.BLOCK_OVERHEAD for _, block in message.blocks)
    return blocks + entries * _ENTRY_BYTES


#: Blocks plus presences per packed message, under what a receiver accepts.
_MAX_ITEMS: Final = limits.MAX_BITSWAP_BLOCKS // 2


def _pack(messages: list[Message]) -> list[Message]:
    """Merge queued messages into as few as fit under the message size limit."""
    budget = limits.MAX_BITSWAP_MESSAGE_BYTES - 64 * 1024
    packed: list[Message] = []
    current = Message()
    used = 0
    for message in messages:
        current.wants += message.wants
        current.haves += message.haves
        current.dont_haves += message.dont_haves
        used += _ENTRY_BYTES * (len(message.wants) + len(message.haves) + len(message.dont_haves))
        for cid, block in message.blocks:
            items = len(current.blocks) + len(current.haves) + len(current.dont_haves)
            if current.blocks and (used + len(block) > budget or items >= _MAX_ITEMS):
                packed.append(current)
                current, used = Message(), 0
            current.blocks.append((cid, block))
            used += len(block) + bitswap.BLOCK_OVERHEAD
        if len(current.wants) >= limits.MAX_BITSWAP_WANTS - 1 or (
            len(current.haves) + len(current.dont_haves) >= limits.MAX_BITSWAP_BLOCKS // 2
        ):
            packed.append(current)
            current, used = Message(), 0
    if not current.is_empty():
        packed.append(current)
    return packed
