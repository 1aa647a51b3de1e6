"""ContentService over a real blockstore and SQLite pins: GC racing an import, memory bounds."""

from __future__ import annotations

import io
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import trio

from zion.gateway.services import Unavailable, Upload
from zion.node import content as content_module
from zion.node.content import ContentService
from zion.protocols.cid import RAW, Cid
from zion.storage.blockstore import Blockstore
from zion.storage.database import Database
from zion.storage.pins import PinStore
from zion.storage.unixfs import exporter, import_file
from zion.storage.unixfs.importer import DiscardingSink

CHUNK = 1024 * 1024


def make_service(tmp_path: Path, **options: Any) -> tuple[ContentService, Blockstore]:
    store = Blockstore(tmp_path / "blocks", durable=False)
    service = ContentService(
        store,
        PinStore(Database(tmp_path / "zion.db")),
        profile="unixfs-v1-2025",
        retrieval_timeout_s=1.0,
        max_upload_bytes=1 << 30,
        **options,
    )
    return service, store


class PausingStream(io.RawIOBase):
    """Yields ``before`` chunks, then waits for ``resume`` before yielding ``after`` more."""

    def __init__(self, before: int, after: int) -> None:
        self.paused = threading.Event()
        self.resume = threading.Event()
        self._before, self._after = before, after

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._before:
            self._before -= 1
            return bytes([self._before]) * CHUNK
        if self._after:
            self.paused.set()
            self.resume.wait(timeout=30)
            self._after -= 1
            return bytes([100 + self._after]) * CHUNK
        return b""


async def test_gc_never_takes_blocks_of_an_import_in_progress(tmp_path: Path) -> None:
    service, store = make_service(tmp_path)
    litter = Cid.for_block(RAW, b"unpinned litter")
    store.put(litter, b"unpinned litter")
    stream = PausingStream(before=3, after=2)
    result: dict[str, object] = {}

    async def add() -> None:
        result.update(await service.add([Upload("f", stream)], profile=None, pin=True, wrap=False))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(add)
        try:
            await trio.to_thread.run_sync(stream.paused.wait, 30)
            collected = await service.gc()
            assert collected["blocks_removed"] == 1  # the litter, nothing the import wrote
            assert not store.has(litter)
        finally:
            stream.resume.set()
    root = Cid.parse(str(result["cid"]))
    node = await exporter.stat(service, root)
    assert node.size == 5 * CHUNK
    content = b"".join([piece async for piece in exporter.read_file(service, node)])
    assert content[:CHUNK] == bytes([2]) * CHUNK and content[-CHUNK:] == bytes([100]) * CHUNK
    # Pinned now: a later GC keeps all of it.
    assert (await service.gc())["blocks_removed"] == 0


def test_importing_a_large_stream_keeps_memory_bounded() -> None:
    """64 MiB through the importer with at most a few chunks alive at once."""

    class Endless(io.RawIOBase):
        def __init__(self, chunks: int) -> None:
            self.left = chunks

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            if not self.left:
                return b""
            self.left -= 1
            return b"\xab" * size

    tracemalloc.start()
    try:
        node = import_file(Endless(64), DiscardingSink())  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert node.size == 64 * CHUNK
    assert peak < 8 * CHUNK, f"peak {peak / CHUNK:.1f} MiB"


async def test_exporting_a_large_file_keeps_memory_bounded(tmp_path: Path) -> None:
    service, store = make_service(tmp_path)
    data = b"".join(bytes([i]) * CHUNK for i in range(48))
    node = import_file(io.BytesIO(data), store)
    del data
    stat = await exporter.stat(service, node.cid)
    tracemalloc.start()
    try:
        total = 0
        async for piece in exporter.read_file(service, stat):
            total += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 48 * CHUNK
    assert peak < 8 * CHUNK, f"peak {peak / CHUNK:.1f} MiB"


async def test_an_import_finishing_during_a_gc_keeps_its_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GC snapshots the pins, then sweeps; an import that completes meanwhile must not pin
    (and leave its blocks unprotected) before that sweep is over."""
    service, _ = make_service(tmp_path)
    in_sweep, sweep_may_go = threading.Event(), threading.Event()
    real_collect = content_module.garbage.collect

    def paused_collect(*args: object) -> object:
        in_sweep.set()
        sweep_may_go.wait(timeout=30)
        return real_collect(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(content_module.garbage, "collect", paused_collect)
    data = bytes(range(256)) * 10_000
    result: dict[str, object] = {}
    added = trio.Event()

    async def add() -> None:
        result.update(
            await service.add([Upload("f", io.BytesIO(data))], profile=None, pin=True, wrap=False)
        )
        added.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(service.gc)
        await trio.to_thread.run_sync(in_sweep.wait, 30)  # the snapshot (no pins) is taken
        nursery.start_soon(add)
        with trio.move_on_after(1):
            await added.wait()
        finished_during_the_sweep = added.is_set()
        sweep_may_go.set()
    assert not finished_during_the_sweep  # it waited for the GC to end before pinning
    stat = await exporter.stat(service, Cid.parse(str(result["cid"])))
    assert b"".join([piece async for piece in exporter.read_file(service, stat)]) == data
    assert (await service.gc())["blocks_removed"] == 0


async def test_identity_cids_need_no_block(tmp_path: Path) -> None:
    service, _ = make_service(tmp_path)
    assert await service.get_block(Cid(1, RAW, b"\x00\x05hello")) == b"hello"


async def test_fetching_stops_at_the_storage_limit(tmp_path: Path) -> None:
    """Past max_storage_bytes, unpinned content is collected; if pinned content alone fills
    the store, nothing more is fetched (a 503), though the member may still add."""
    network = {Cid.for_block(RAW, bytes([i]) * 1000): bytes([i]) * 1000 for i in range(3)}

    async def fetch(cid: Cid) -> bytes:
        block = network[cid]
        store.put(cid, block)
        return block

    service, store = make_service(tmp_path, max_storage_bytes=1000, fetch=fetch)
    first, second, third = network
    assert await service.get_block(first) == network[first]
    # Over the limit: the unpinned first block is collected to make room for the second.
    assert await service.get_block(second) == network[second]
    assert not store.has(first)
    await service.pin(second)
    with pytest.raises(Unavailable):
        await service.get_block(third)
    added = await service.add(
        [Upload("mine", io.BytesIO(b"x" * 5000))], profile=None, pin=True, wrap=False
    )
    assert added["size"] == 5000
