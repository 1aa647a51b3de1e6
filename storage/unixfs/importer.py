"""The UnixFS importer: bytes and directory trees into blocks, with Helia's and Kubo's CIDs.

Files are cut into fixed-size chunks and laid out as a balanced tree, built the way
ipfs-unixfs-importer's `balanced` builder does (group the leaves into parents of at most
``max_links``, then the parents, until one root remains; a one-chunk file is its own root).
Groups are closed as soon as they fill, so a file of any size is imported with at most
``max_links`` pending nodes per tree level in memory.

Blocks go to a BlockSink as they are made: the blockstore, or a sink that only counts (for
--only-hash). This module does CPU and file work only; callers run it in a worker thread.
"""

import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from zion.protocols.cid import DAG_PB, RAW, Cid
from zion.protocols.dagpb import PBLink, encode_node
from zion.protocols.unixfs import DataType, UnixFsData, encode_data
from zion.storage.unixfs import hamt
from zion.storage.unixfs.errors import UnixFsError
from zion.storage.unixfs.profiles import DEFAULT_PROFILE, ImportProfile

#: Called with the number of file bytes imported so far.
Progress = Callable[[int], None]


class BlockSink(Protocol):
    def put(self, cid: Cid, block: bytes, *, verify: bool = ...) -> bool: ...


class DiscardingSink:
    """Counts blocks and bytes and keeps nothing (``--only-hash``)."""

    def __init__(self) -> None:
        self.blocks = 0
        self.bytes = 0

    def put(self, cid: Cid, block: bytes, *, verify: bool = False) -> bool:
        self.blocks += 1
        self.bytes += len(block)
        return True


@dataclass(frozen=True, slots=True)
class ImportedNode:
    cid: Cid
    #: File content bytes below this node (0 for directories).
    size: int
    #: Bytes of the whole DAG: this block plus every block below it (a link's Tsize).
    tsize: int


def import_bytes(
    data: bytes, sink: BlockSink, profile: ImportProfile = DEFAULT_PROFILE
) -> ImportedNode:
    builder = _FileBuilder(sink, profile)
    view = memoryview(data)
    for start in range(0, len(data), profile.chunk_size):
        builder.add_chunk(bytes(view[start : start + profile.chunk_size]))
    return builder.finish()


def import_file(
    stream: IO[bytes],
    sink: BlockSink,
    profile: ImportProfile = DEFAULT_PROFILE,
    progress: Progress | None = None,
) -> ImportedNode:
    """Import everything ``stream`` yields until EOF, in bounded memory."""
    builder = _FileBuilder(sink, profile)
    done = 0
    while chunk := _read_chunk(stream, profile.chunk_size):
        builder.add_chunk(chunk)
        done += len(chunk)
        if progress is not None:
            progress(done)
    return builder.finish()


def import_path(
    path: Path,
    sink: BlockSink,
    profile: ImportProfile = DEFAULT_PROFILE,
    progress: Progress | None = None,
) -> ImportedNode:
    """Import a file, or a directory tree with the directory itself as the root."""
    counter = _ProgressCounter(progress)
    return _import_entry(path, sink, profile, counter)


def build_directory(
    entries: Iterable[tuple[str, ImportedNode]], sink: BlockSink, profile: ImportProfile
) -> ImportedNode:
    """A directory node over already imported entries; sharded past the HAMT threshold."""
    links = [PBLink(node.cid, name, node.tsize) for name, node in entries]
    names = [link.name for link in links]
    if len(set(names)) != len(names):
        raise UnixFsError("two directory entries with the same name")
    for name in names:
        _check_entry_name(name)
    if hamt.estimated_size(links, profile.shard_estimate) > hamt.HAMT_THRESHOLD_BYTES:
        cid, tsize = hamt.build_shard(links, lambda block: _put_node(sink, profile, block))
        return ImportedNode(cid, 0, tsize)
    block = encode_node(encode_data(UnixFsData(DataType.DIRECTORY)), links)
    cid = _put_node(sink, profile, block)
    return ImportedNode(cid, 0, len(block) + sum(link.tsize or 0 for link in links))


class _FileBuilder:
    def __init__(self, sink: BlockSink, profile: ImportProfile) -> None:
        self._sink = sink
        self._profile = profile
        #: levels[0] holds leaves, levels[1] their parents, ...; each at most max_links long.
        self._levels: list[list[ImportedNode]] = [[]]
        self._leaves = 0

    def add_chunk(self, chunk: bytes) -> None:
        self._leaves += 1
        self._push(0, self._leaf(chunk))

    def finish(self) -> ImportedNode:
        if self._leaves == 0:
            return self._leaf(b"")
        if self._leaves == 1:
            return self._levels[0][0]
        level = 0
        while True:
            pending = self._levels[level]
            is_top = all(not higher for higher in self._levels[level + 1 :])
            if is_top and len(pending) == 1:
                return pending[0]
            if pending:
                self._levels[level] = []
                self._push(level + 1, self._parent(pending), flush_full=False)
            level += 1

    def _push(self, level: int, node: ImportedNode, *, flush_full: bool = True) -> None:
        if level == len(self._levels):
            self._levels.append([])
        nodes = self._levels[level]
        nodes.append(node)
        if flush_full and len(nodes) == self._profile.max_links:
            self._levels[level] = []
            self._push(level + 1, self._parent(nodes))

    def _leaf(self, chunk: bytes) -> ImportedNode:
        if self._profile.raw_leaves:
            cid = Cid.for_block(RAW, chunk)
            self._sink.put(cid, chunk, verify=False)
            return ImportedNode(cid, len(chunk), len(chunk))
        data = encode_data(UnixFsData(DataType.FILE, data=chunk, filesize=len(chunk)))
        block = encode_node(data)
        return ImportedNode(_put_node(self._sink, self._profile, block), len(chunk), len(block))

    def _parent(self, children: list[ImportedNode]) -> ImportedNode:
        size = sum(child.size for child in children)
        data = UnixFsData(
            DataType.FILE, filesize=size, blocksizes=tuple(child.size for child in children)
        )
        links = [PBLink(child.cid, "", child.tsize) for child in children]
        block = encode_node(encode_data(data), links)
        cid = _put_node(self._sink, self._profile, block)
        return ImportedNode(cid, size, len(block) + sum(child.tsize for child in children))


def _put_node(sink: BlockSink, profile: ImportProfile, block: bytes) -> Cid:
    cid = Cid.for_block(DAG_PB, block, version=profile.cid_version)
    sink.put(cid, block, verify=False)
    return cid


def _read_chunk(stream: IO[bytes], size: int) -> bytes:
    """Exactly ``size`` bytes unless EOF comes first (pipes and sockets return short reads)."""
    chunk = stream.read(size)
    if not chunk or len(chunk) == size:
        return chunk
    parts = [chunk]
    missing = size - len(chunk)
    while missing:
        more = stream.read(missing)
        if not more:
            break
        parts.append(more)
        missing -= len(more)
    return b"".join(parts)


class _ProgressCounter:
    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self.before = 0

    def file_progress(self) -> Progress | None:
        if self._progress is None:
            return None
        report, base = self._progress, self.before
        return lambda done: report(base + done)


def _import_entry(
    path: Path, sink: BlockSink, profile: ImportProfile, counter: _ProgressCounter
) -> ImportedNode:
    try:
        mode = path.lstat().st_mode
        if stat.S_ISREG(mode):
            with path.open("rb") as stream:
                node = import_file(stream, sink, profile, counter.file_progress())
            counter.before += node.size
            return node
        if stat.S_ISDIR(mode):
            entries = [
                (name, _import_entry(path / name, sink, profile, counter))
                for name in sorted(os.listdir(path))
            ]
            return build_directory(entries, sink, profile)
    except OSError as exc:
        raise UnixFsError(f"cannot import {path}: {exc.strerror or exc}") from exc
    raise UnixFsError(f"cannot import {path}: not a regular file or directory")


def _check_entry_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\x00" in name:
        raise UnixFsError(f"{name!r} is not a valid directory entry name")
