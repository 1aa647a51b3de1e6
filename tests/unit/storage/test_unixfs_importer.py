import io
import random

import pytest

from tests.unit.storage.unixfs_helpers import MemoryBlocks
from zion.protocols.cid import RAW
from zion.protocols.dagpb import decode_node
from zion.protocols.unixfs import decode_data
from zion.storage.unixfs import (
    PROFILES,
    ImportProfile,
    UnixFsError,
    exporter,
    import_bytes,
    import_file,
)
from zion.storage.unixfs.importer import build_directory

SMALL = ImportProfile("small", 1, True, chunk_size=4, max_links=3)


class TrickleStream(io.RawIOBase):
    """Returns at most 3 bytes per read, like a pipe under load."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        piece, self._data = self._data[: min(size, 3)], self._data[min(size, 3) :]
        return piece


def test_short_reads_give_the_same_cid_as_whole_reads() -> None:
    data = random.Random(1).randbytes(100)
    whole = import_bytes(data, MemoryBlocks(), SMALL).cid
    trickled = import_file(TrickleStream(data), MemoryBlocks(), SMALL).cid  # type: ignore[arg-type]
    assert trickled == whole


@pytest.mark.parametrize("length", [0, 1, 4, 5, 12, 13, 36, 37, 100, 108, 109])
async def test_balanced_tree_shape_and_round_trip(length: int) -> None:
    """Small chunks and 3 links per node exercise every level-closing path."""
    data = bytes(range(256)) * 1
    data = (data * (length // 256 + 1))[:length]
    blocks = MemoryBlocks()
    root = import_bytes(data, blocks, SMALL).cid
    node = await exporter.stat(blocks, root)
    assert node.size == length
    assert b"".join([p async for p in exporter.read_file(blocks, node)]) == data
    # No node has more than max_links links, and leaves are raw.
    for block in blocks.store.values():
        if block and block[0] == 0x12:  # a dag-pb node starts with a link (field 2)
            assert len(decode_node(block).links) <= SMALL.max_links
    if length <= SMALL.chunk_size:
        assert root.codec == RAW


@pytest.mark.parametrize(
    ("start", "end"), [(0, 1), (3, 9), (50, 51), (0, 100), (99, 100), (40, 1000)]
)
async def test_byte_ranges(start: int, end: int) -> None:
    data = random.Random(2).randbytes(100)
    blocks = MemoryBlocks()
    node = await exporter.stat(blocks, import_bytes(data, blocks, SMALL).cid)
    assert (
        b"".join([p async for p in exporter.read_file(blocks, node, start, end)]) == data[start:end]
    )


async def test_range_reads_only_the_blocks_it_needs() -> None:
    data = random.Random(3).randbytes(4 * 27)
    blocks = MemoryBlocks()
    node = await exporter.stat(blocks, import_bytes(data, blocks, SMALL).cid)
    fetched: list[bytes] = []

    class Counting:
        async def get_block(self, cid):  # type: ignore[no-untyped-def]
            fetched.append(cid.multihash)
            return await blocks.get_block(cid)

    assert b"".join([p async for p in exporter.read_file(Counting(), node, 50, 52)]) == data[50:52]
    assert len(fetched) == 3  # one per level below the root: 27 leaves, 3 links per node


def test_parent_nodes_record_sizes() -> None:
    blocks = MemoryBlocks()
    root = import_bytes(b"x" * 10, blocks, SMALL).cid
    unixfs = decode_data(decode_node(blocks.store[root.multihash]).data or b"")
    assert unixfs.filesize == 10 and unixfs.blocksizes == (4, 4, 2)


def test_directory_entry_names_are_checked() -> None:
    blocks = MemoryBlocks()
    child = import_bytes(b"a", blocks)
    for bad in ["", ".", "..", "a/b", "nul\x00"]:
        with pytest.raises(UnixFsError):
            build_directory([(bad, child)], blocks, PROFILES["unixfs-v1-2025"])
    with pytest.raises(UnixFsError):
        build_directory([("a", child), ("a", child)], blocks, PROFILES["unixfs-v1-2025"])


def test_profiles_validate_themselves() -> None:
    with pytest.raises(ValueError):
        ImportProfile("bad", 0, True, 1024, 174)
    with pytest.raises(ValueError):
        ImportProfile("bad", 1, True, 8 * 1024 * 1024, 174)
    with pytest.raises(ValueError):
        ImportProfile("bad", 1, True, 1024, 1)
