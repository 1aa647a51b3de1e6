"""The UnixFS exporter: files, byte ranges, directory listings and paths out of a DAG.

Blocks come from a BlockGetter, which may be the local blockstore or the network (Bitswap), so
the exporter is async and reads one block at a time: memory stays bounded by one block per tree
level whatever the file's size. Every decoded node is checked against its parent's claims
(sizes, link counts), and depth is bounded, so a hostile DAG gets an error, not a hang.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from zion.protocols.cid import DAG_PB, RAW, Cid
from zion.protocols.dagpb import PBNode, decode_node
from zion.protocols.errors import ProtocolError
from zion.protocols.unixfs import DataType, UnixFsData, decode_data
from zion.storage.unixfs import hamt
from zion.storage.unixfs.errors import UnixFsError

#: Deeper than any balanced file (1024^6 MiB) or real directory tree; bounds hostile DAGs.
MAX_DAG_DEPTH: Final = 64
#: Path segments followed by one resolution.
MAX_PATH_SEGMENTS: Final = 256
#: Blocks of a file asked for ahead of the one being read, when the getter can prefetch
#: (from the network one round trip per block would otherwise bound the speed).
PREFETCH_BLOCKS: Final = 32


class BlockGetter(Protocol):
    async def get_block(self, cid: Cid) -> bytes: ...


@runtime_checkable
class Prefetcher(Protocol):
    def prefetch(self, cids: list[Cid]) -> None:
        """Start getting these blocks (without waiting), soon to be asked for in order."""


class NotUnixFs(UnixFsError):
    """The CID names a block that is not a UnixFS node (e.g. dag-cbor): serve it raw."""


class NoSuchPath(UnixFsError):
    pass


@dataclass(frozen=True, slots=True)
class UnixFsNode:
    cid: Cid
    type: DataType
    #: Bytes of file content (files and raw blocks); 0 for directories.
    size: int
    pb: PBNode | None
    data: UnixFsData | None
    #: The block itself when it is a raw leaf (its content); empty otherwise.
    raw: bytes = b""

    @property
    def is_directory(self) -> bool:
        return self.type in (DataType.DIRECTORY, DataType.HAMT_SHARD)


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    name: str
    cid: Cid
    #: The link's Tsize: the whole DAG below, a good approximation of the entry's size.
    tsize: int | None


async def stat(getter: BlockGetter, cid: Cid) -> UnixFsNode:
    return _decode(cid, await getter.get_block(cid))


def _decode(cid: Cid, block: bytes) -> UnixFsNode:
    if cid.codec == RAW:
        return UnixFsNode(cid, DataType.RAW, len(block), None, None, block)
    if cid.codec != DAG_PB:
        raise NotUnixFs(f"{cid} is not dag-pb or raw")
    try:
        pb = decode_node(block)
        data = decode_data(pb.data or b"")
    except ProtocolError as exc:
        raise UnixFsError(f"{cid} is not a valid UnixFS node: {exc}") from exc
    if data.type in (DataType.FILE, DataType.RAW):
        if len(data.blocksizes) != len(pb.links):
            raise UnixFsError(f"{cid}: {len(pb.links)} links but {len(data.blocksizes)} sizes")
        size = len(data.data) + sum(data.blocksizes)
    elif data.type == DataType.SYMLINK:
        size = len(data.data)
    else:
        size = 0
    return UnixFsNode(cid, data.type, size, pb, data)


async def read_file(
    getter: BlockGetter, node: UnixFsNode, start: int = 0, end: int | None = None
) -> AsyncIterator[bytes]:
    """The bytes [start, end) of a file (end defaults to its size), as they arrive."""
    end = node.size if end is None else min(end, node.size)
    if node.is_directory:
        raise UnixFsError(f"{node.cid} is a directory")
    if start < end:
        async for piece in _read(getter, node, start, end, 0):
            yield piece


async def _read(
    getter: BlockGetter, node: UnixFsNode, start: int, end: int, depth: int
) -> AsyncIterator[bytes]:
    """Bytes [start, end) relative to ``node``'s own content."""
    if depth > MAX_DAG_DEPTH:
        raise UnixFsError(f"{node.cid}: file DAG deeper than {MAX_DAG_DEPTH}")
    if node.pb is None:
        yield node.raw[start:end]
        return
    assert node.data is not None
    own = node.data.data
    if start < len(own):
        yield own[start:end]
    # The children that hold bytes of [start, end), with their ranges.
    needed = []
    offset = len(own)
    for link, size in zip(node.pb.links, node.data.blocksizes, strict=True):
        child_start, child_end = max(start - offset, 0), min(end - offset, size)
        if child_start < child_end:
            needed.append((link.cid, size, child_start, child_end))
        offset += size
        if offset >= end:
            break
    prefetch = getter.prefetch if isinstance(getter, Prefetcher) else None
    if prefetch is not None:
        prefetch([cid for cid, *_ in needed[:PREFETCH_BLOCKS]])
    for index, (cid, size, child_start, child_end) in enumerate(needed):
        if prefetch is not None and index + PREFETCH_BLOCKS < len(needed):
            prefetch([needed[index + PREFETCH_BLOCKS][0]])
        child = _decode(cid, await getter.get_block(cid))
        if child.is_directory or child.size != size:
            raise UnixFsError(f"{cid} does not match its parent's size {size}")
        async for piece in _read(getter, child, child_start, child_end, depth + 1):
            yield piece


async def list_directory(getter: BlockGetter, node: UnixFsNode) -> AsyncIterator[DirectoryEntry]:
    """Entries in name order for plain directories, in shard order for HAMT directories."""
    if not node.is_directory or node.pb is None:
        raise UnixFsError(f"{node.cid} is not a directory")
    if node.type == DataType.DIRECTORY:
        for link in node.pb.links:
            yield DirectoryEntry(link.name, link.cid, link.tsize)
        return
    async for name, link in hamt.iter_entries(getter.get_block, node.cid, node.pb):
        yield DirectoryEntry(name, link.cid, link.tsize)


async def resolve(getter: BlockGetter, root: Cid, segments: list[str]) -> UnixFsNode:
    """Follow ``segments`` (already split on "/", percent-decoded) from ``root``."""
    if len(segments) > MAX_PATH_SEGMENTS:
        raise NoSuchPath(f"path longer than {MAX_PATH_SEGMENTS} segments")
    node = await stat(getter, root)
    for index, segment in enumerate(segments):
        if not node.is_directory or node.pb is None:
            raise NoSuchPath(f"{'/'.join(segments[:index])} is not a directory")
        if node.type == DataType.DIRECTORY:
            link = next((link for link in node.pb.links if link.name == segment), None)
        else:
            link = await hamt.find(getter.get_block, node.cid, node.pb, segment)
        if link is None:
            raise NoSuchPath(f"no {'/'.join(segments[: index + 1])} under {root}")
        node = await stat(getter, link.cid)
    return node


async def walk_blocks(getter: BlockGetter, root: Cid) -> AsyncIterator[tuple[Cid, bytes]]:
    """Every block of the DAG under ``root``, depth-first, each once (CAR order)."""
    seen: set[bytes] = set()
    stack = [(root, 0)]
    while stack:
        cid, depth = stack.pop()
        if cid.multihash in seen:
            continue
        seen.add(cid.multihash)
        block = await getter.get_block(cid)
        yield cid, block
        if cid.codec == DAG_PB:
            if depth >= MAX_DAG_DEPTH:
                raise UnixFsError(f"{cid}: DAG deeper than {MAX_DAG_DEPTH}")
            try:
                links = decode_node(block).links
            except ProtocolError as exc:
                raise UnixFsError(f"{cid} is not valid dag-pb: {exc}") from exc
            stack.extend((link.cid, depth + 1) for link in reversed(links))
