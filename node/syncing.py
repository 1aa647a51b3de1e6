"""/zion/sync/1.0.0 over libp2p streams: the IO around zion.protocols.sync.

Every node pulls: on each new connection, and every ``interval_s`` for every connected peer,
it walks the peer's set, then fetches what it lacks in chunks over the same stream. Records
fetched this way go through the same validation as gossip. One session per peer at a time and
a bounded number overall, each with a deadline.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import trio

from zion.node.framed import ByteStream, FramedStream, StreamClosed
from zion.node.ingest import Checked, Ingest
from zion.protocols import cid, limits, sync
from zion.protocols.errors import ProtocolError
from zion.protocols.records import Record
from zion.storage.records import RecordStore

log = logging.getLogger(__name__)

MAX_CONCURRENT_SESSIONS: Final = 4
#: Serving a peer: records per reply frame (and the frame stays under 1 MiB of records).
RECORDS_PER_FRAME: Final = 256
RECORD_BYTES_PER_FRAME: Final = 1024 * 1024

#: Validated frames waiting for the committer.
PIPELINE_DEPTH: Final = 8

OpenStream = Callable[[str], Awaitable[ByteStream]]


@dataclass(slots=True)
class SyncStats:
    sessions: int = 0
    failures: int = 0
    fetched: int = 0
    stored: int = 0
    served: int = 0


class SyncService:
    def __init__(
        self,
        store: RecordStore,
        index: sync.ItemIndex,
        ingest: Ingest,
        open_stream: OpenStream,
        timeout_s: float,
        on_stored: Callable[[list[Record]], None] | None = None,
    ) -> None:
        """``on_stored``: called with the records each pull stores (to gossip them on)."""
        self._store = store
        self._index = index
        self._ingest = ingest
        self._open_stream = open_stream
        self._timeout_s = timeout_s
        self._on_stored = on_stored
        self._limiter = trio.CapacityLimiter(MAX_CONCURRENT_SESSIONS)
        self._running: set[str] = set()
        self.stats = SyncStats()
        #: Set after every finished session (tests and `zion status` wait on it).
        self.last_finished: dict[str, float] = {}

    # --- serving ------------------------------------------------------------------------

    async def serve(self, stream: ByteStream) -> None:
        """Answer one peer's session until it closes the stream."""
        framed = FramedStream(stream, limits.MAX_SYNC_FRAME_BYTES)
        responder = sync.Responder(self._index)
        try:
            with trio.fail_after(self._timeout_s):
                while True:
                    try:
                        message = sync.decode_message(await framed.receive())
                    except StreamClosed:
                        break
                    if isinstance(message, sync.Recon):
                        ranges, listed = responder.answer(message.ranges)
                        await framed.send(sync.encode_recon(ranges, listed))
                    elif isinstance(message, sync.Get):
                        await self._send_records(framed, message.ids)
                    else:
                        raise ProtocolError("malformed", "unexpected sync message")
            await stream.close()
        except (ProtocolError, trio.TooSlowError) as exc:
            log.info("sync: dropping a session we served: %s", exc)
            await _reset(stream)
        except Exception as exc:  # the peer vanished mid-stream: nothing to recover
            log.debug("sync: served session ended: %r", exc)
            await _reset(stream)

    async def _send_records(self, framed: FramedStream, raw_ids: list[bytes]) -> None:
        ids = [cid.cid_bytes_to_str(raw) for raw in raw_ids]
        blocks = await trio.to_thread.run_sync(self._store.blocks, ids)
        batch: list[bytes] = []
        size = 0
        for block in blocks:
            if batch and (
                len(batch) == RECORDS_PER_FRAME or size + len(block) > RECORD_BYTES_PER_FRAME
            ):
                await framed.send(sync.encode_records(batch))
                batch, size = [], 0
            batch.append(block)
            size += len(block)
        if batch:
            await framed.send(sync.encode_records(batch))
        await framed.send(sync.encode_end())
        self.stats.served += len(blocks)

    # --- pulling ------------------------------------------------------------------------

    async def pull(self, peer_id: str) -> int:
        """Reconcile with ``peer_id`` and store what we lacked; returns records stored.

        Errors are logged, not raised: sync is retried on the next interval anyway.
        """
        if peer_id in self._running:
            return 0
        self._running.add(peer_id)
        try:
            async with self._limiter:
                with trio.fail_after(self._timeout_s):
                    stored = await self._pull(peer_id)
            self.stats.sessions += 1
            return stored
        except (ProtocolError, trio.TooSlowError, StreamClosed) as exc:
            self.stats.failures += 1
            log.info("sync with %s failed: %s", peer_id, exc)
            return 0
        except Exception as exc:  # connection-level failures surface as many types
            # Most often a peer that is not a Zion node (a DHT server, Helia): it cannot
            # open our protocol. Counted in the status; not worth a line in the log.
            self.stats.failures += 1
            log.debug("sync with %s failed: %r", peer_id, exc)
            return 0
        finally:
            self._running.discard(peer_id)
            self.last_finished[peer_id] = trio.current_time()

    async def _pull(self, peer_id: str) -> int:
        stream = await self._open_stream(peer_id)
        framed = FramedStream(stream, limits.MAX_SYNC_FRAME_BYTES)
        try:
            missing = await self._reconcile(framed)
            stored = await self._fetch_all(framed, [record_id for _, record_id in missing])
            await stream.close()
            return stored
        except BaseException:
            await _reset(stream)
            raise

    async def _reconcile(self, framed: FramedStream) -> list[sync.Item]:
        initiator = sync.Initiator(self._index)
        request = initiator.first_request()
        while request:
            for part in _range_chunks(request):
                await framed.send(sync.encode_recon(part))
            ranges: list[sync.Range] = []
            listed: list[sync.Item] = []
            for _ in _range_chunks(request):
                reply = sync.decode_message(await framed.receive())
                if not isinstance(reply, sync.Recon):
                    raise ProtocolError("malformed", "expected a recon reply")
                ranges += reply.ranges
                listed += reply.listed
            request = initiator.next_request(ranges, listed)
        return initiator.missing

    async def _fetch_all(self, framed: FramedStream, ids: list[bytes]) -> int:
        """Fetch ``ids`` in chunks, as a pipeline: frames are read and validated while the
        previous ones are committed, and the committer takes whatever has piled up at once."""
        send, receive = trio.open_memory_channel[Checked](PIPELINE_DEPTH)
        stored = 0

        async def commit() -> None:
            nonlocal stored
            async with receive:
                async for first in receive:
                    batches = [first]
                    while True:
                        try:
                            batches.append(receive.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                    report = await self._ingest.store(batches)
                    stored += len(report.stored)
                    self.stats.stored += len(report.stored)
                    if report.stored and self._on_stored is not None:
                        self._on_stored(report.stored)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(commit)
            async with send:
                for chunk in sync.chunks(ids, limits.MAX_SYNC_GET_IDS):
                    await self._fetch(framed, chunk, send)
        return stored

    async def _fetch(
        self, framed: FramedStream, ids: list[bytes], out: trio.MemorySendChannel[Checked]
    ) -> None:
        await framed.send(sync.encode_get(ids))
        wanted = set(ids)
        while True:
            message = sync.decode_message(await framed.receive())
            if isinstance(message, sync.End):
                return
            if not isinstance(message, sync.Records):
                raise ProtocolError("malformed", "expected records")
            for block in message.blocks:
                if cid.record_cid_bytes(block) not in wanted:
                    raise ProtocolError("unrequested", "peer sent a record we did not ask for")
            self.stats.fetched += len(message.blocks)
            checked = await self._ingest.validate(message.blocks)
            if checked.report.rejected:
                raise ProtocolError(checked.report.reject_reason, "peer sent invalid records")
            await out.send(checked)


def _range_chunks(ranges: list[sync.Range]) -> list[list[sync.Range]]:
    size = limits.MAX_SYNC_RANGES_PER_FRAME // sync.SPLIT_FANOUT
    return [ranges[i : i + size] for i in range(0, len(ranges), size)]


async def _reset(stream: ByteStream) -> None:
    # Resetting a stream whose connection is already gone fails in several ways; all mean
    # the same thing here.
    with trio.move_on_after(1), contextlib.suppress(Exception):
        await stream.reset()
