import os
import stat
from pathlib import Path

import pytest

from zion.protocols import limits
from zion.protocols.cid import DAG_PB, RAW, Cid
from zion.storage.blockstore import BadBlock, BlockNotFound, Blockstore, BlockWriter


def test_put_get_and_accounting(tmp_path: Path) -> None:
    store = Blockstore(tmp_path)
    cid = Cid.for_block(RAW, b"hello")
    assert store.put(cid, b"hello")
    assert not store.put(cid, b"hello")  # already there
    assert store.get(cid) == b"hello"
    assert store.has(cid) and store.size(cid) == 5
    assert (store.block_count, store.total_bytes) == (1, 5)
    # The same bytes under a CIDv0 dag-pb name share the multihash, hence the file.
    assert store.has(Cid(0, DAG_PB, cid.multihash))
    assert list(store.multihashes()) == [cid.multihash]


def test_counters_survive_reopening(tmp_path: Path) -> None:
    store = Blockstore(tmp_path)
    for i in range(20):
        data = bytes([i]) * (i + 1)
        store.put(Cid.for_block(RAW, data), data)
    again = Blockstore(tmp_path)
    assert (again.block_count, again.total_bytes) == (20, sum(range(1, 21)))


def test_blocks_are_private_files(tmp_path: Path) -> None:
    store = Blockstore(tmp_path)
    cid = Cid.for_block(RAW, b"x")
    store.put(cid, b"x")
    path = next(p for p in tmp_path.rglob("*") if p.is_file())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_block_that_does_not_hash_to_its_cid_is_refused(tmp_path: Path) -> None:
    store = Blockstore(tmp_path)
    cid = Cid.for_block(RAW, b"good")
    with pytest.raises(BadBlock):
        store.put(cid, b"evil")
    assert not store.has(cid) and store.block_count == 0


def test_an_oversized_block_is_refused(tmp_path: Path) -> None:
    store = Blockstore(tmp_path)
    block = b"\0" * (limits.MAX_BLOCK_BYTES + 1)
    with pytest.raises(BadBlock):
        store.put(Cid.for_block(RAW, block), block, verify=False)
    assert store.block_count == 0


def test_missing_block(tmp_path: Path) -> None:
    with pytest.raises(BlockNotFound):
        Blockstore(tmp_path).get(Cid.for_block(RAW, b"absent"))


def test_leftover_temp_files_are_removed_at_open(tmp_path: Path) -> None:
    Blockstore(tmp_path)
    (tmp_path / ".tmp" / "half-written").write_bytes(b"partial")
    store = Blockstore(tmp_path)
    assert os.listdir(tmp_path / ".tmp") == []
    assert store.block_count == 0


def test_protected_blocks_are_not_deleted(tmp_path: Path) -> None:
    store = Blockstore(tmp_path)
    old = Cid.for_block(RAW, b"old")
    store.put(old, b"old")
    with store.protect():
        new = Cid.for_block(RAW, b"new")
        store.put(new, b"new")
        store.put(old, b"old")  # an import that reuses an existing block protects it too
        assert store.delete(new.multihash) == 0
        assert store.delete(old.multihash) == 0
    assert store.delete(new.multihash) == 3
    assert not store.has(new)
    assert (store.block_count, store.total_bytes) == (1, 3)


def test_block_writer_writes_everything_by_close(tmp_path: Path) -> None:
    store = Blockstore(tmp_path)
    blocks = [bytes([i]) * 1000 for i in range(50)]
    with BlockWriter(store) as writer:
        for block in blocks:
            writer.put(Cid.for_block(RAW, block), block)
    assert store.block_count == 50
    assert all(store.get(Cid.for_block(RAW, block)) == block for block in blocks)


def test_block_writer_reports_a_failed_write(tmp_path: Path) -> None:
    store = Blockstore(tmp_path)
    too_big = b"\0" * (limits.MAX_BLOCK_BYTES + 1)
    writer = BlockWriter(store)
    writer.put(Cid.for_block(RAW, too_big), too_big)
    with pytest.raises(BadBlock):
        writer.close()
