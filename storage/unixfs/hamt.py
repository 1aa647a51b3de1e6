"""HAMT-sharded directories, laid out exactly as Kubo (boxo) and Helia lay them out.

A directory whose links pass HAMT_THRESHOLD_BYTES becomes a hash array mapped trie of dag-pb
nodes with 256 slots each. An entry's slot at depth d is byte d of the first 64 bits of
murmur3-x64-128 of its name (big-endian, i.e. most significant bits first); after 8 levels the
name is rehashed with the depth appended, as Helia does (Kubo stops with an error there, and
only a 64-bit hash collision gets that deep). A slot holds one entry, linked as
``"%02X" % slot + name``, or a sub-shard, linked as ``"%02X" % slot``. A node's UnixFS Data
holds a bitfield of its used slots (big-endian, leading zero bytes stripped), hashType 0x22
and fanout 256.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Final

import mmh3

from zion.protocols.cid import Cid
from zion.protocols.dagpb import PBLink, PBNode, decode_node, encode_node
from zion.protocols.errors import ProtocolError
from zion.protocols.unixfs import (
    HAMT_FANOUT,
    HAMT_HASH_MURMUR3,
    DataType,
    UnixFsData,
    decode_data,
    encode_data,
)
from zion.storage.unixfs.errors import UnixFsError

#: Kubo and Helia both shard a directory whose estimated size is strictly greater than this.
HAMT_THRESHOLD_BYTES: Final = 256 * 1024
#: Past 8 levels names are rehashed; real directories never get near this.
MAX_SHARD_DEPTH: Final = 32
_PREFIX_CHARS: Final = 2
_BYTES_PER_HASH: Final = 8

GetBlock = Callable[[Cid], Awaitable[bytes]]


def estimated_size(links: Sequence[PBLink], estimate: str) -> int:
    """The size the sharding decision compares with the threshold.

    ``links``: name bytes plus CID bytes per link (boxo's default, Helia's ``links-bytes``);
    ``block``: the encoded flat directory block (IPIP-499, the unixfs-v1-2025 profile).
    """
    if estimate == "links":
        return sum(len(link.name.encode()) + len(link.cid.raw) for link in links)
    return len(encode_node(encode_data(UnixFsData(DataType.DIRECTORY)), links))


def slot(name: bytes, depth: int) -> int:
    rehash = depth // _BYTES_PER_HASH
    key = name + bytes([rehash]) if rehash else name
    h1 = mmh3.hash64(key, seed=0, x64arch=True, signed=False)[0]
    return h1.to_bytes(8, "big")[depth % _BYTES_PER_HASH]


def build_shard(links: Sequence[PBLink], put: Callable[[bytes], Cid]) -> tuple[Cid, int]:
    """Write the shard nodes for ``links`` (directory entries); return the root CID and Tsize."""
    return _build([(link.name.encode(), link) for link in links], 0, put)


def _build(
    entries: list[tuple[bytes, PBLink]], depth: int, put: Callable[[bytes], Cid]
) -> tuple[Cid, int]:
    if depth > MAX_SHARD_DEPTH:
        raise UnixFsError("directory entries collide past the deepest HAMT level")
    buckets: dict[int, list[tuple[bytes, PBLink]]] = {}
    for name, link in entries:
        buckets.setdefault(slot(name, depth), []).append((name, link))
    links = []
    for index in sorted(buckets):
        bucket = buckets[index]
        prefix = f"{index:02X}"
        if len(bucket) == 1:
            link = bucket[0][1]
            links.append(PBLink(link.cid, prefix + link.name, link.tsize))
        else:
            child, tsize = _build(bucket, depth + 1, put)
            links.append(PBLink(child, prefix, tsize))
    bitfield = sum(1 << index for index in buckets)
    data = UnixFsData(
        DataType.HAMT_SHARD,
        data=bitfield.to_bytes((bitfield.bit_length() + 7) // 8, "big"),
        hash_type=HAMT_HASH_MURMUR3,
        fanout=HAMT_FANOUT,
    )
    block = encode_node(encode_data(data), links)
    return put(block), len(block) + sum(link.tsize or 0 for link in links)


async def iter_entries(get: GetBlock, cid: Cid, pb: PBNode) -> AsyncIterator[tuple[str, PBLink]]:
    """Every entry of the sharded directory rooted at ``pb``, in slot order."""
    async for name, link in _iter(get, cid, pb, 0, set()):
        yield name, link


async def _iter(
    get: GetBlock, cid: Cid, pb: PBNode, depth: int, seen: set[bytes]
) -> AsyncIterator[tuple[str, PBLink]]:
    # A shard reached twice cannot happen in a real HAMT; a crafted one that links the same
    # child 256 times per level would list 256^depth entries from a handful of blocks.
    if cid.multihash in seen:
        raise UnixFsError(f"HAMT node {cid} appears twice in one directory")
    seen.add(cid.multihash)
    _check_shard(cid, pb, depth)
    for link in pb.links:
        if len(link.name) < _PREFIX_CHARS:
            raise UnixFsError(f"HAMT {cid}: link name {link.name!r} has no slot prefix")
        if len(link.name) > _PREFIX_CHARS:
            yield link.name[_PREFIX_CHARS:], link
        else:
            child = await _fetch_shard(get, link.cid)
            async for entry in _iter(get, link.cid, child, depth + 1, seen):
                yield entry


async def find(get: GetBlock, cid: Cid, pb: PBNode, name: str) -> PBLink | None:
    """The entry called ``name``, reading one node per level."""
    encoded = name.encode()
    for depth in range(MAX_SHARD_DEPTH + 1):
        _check_shard(cid, pb, depth)
        prefix = f"{slot(encoded, depth):02X}"
        below = None
        for link in pb.links:
            if link.name == prefix + name:
                return link
            if link.name == prefix:
                below = link
        if below is None:
            return None
        cid, pb = below.cid, await _fetch_shard(get, below.cid)
    return None


async def _fetch_shard(get: GetBlock, cid: Cid) -> PBNode:
    try:
        return decode_node(await get(cid))
    except ProtocolError as exc:
        raise UnixFsError(f"HAMT node {cid} is not valid dag-pb: {exc}") from exc


def _check_shard(cid: Cid, pb: PBNode, depth: int) -> None:
    if depth > MAX_SHARD_DEPTH:
        raise UnixFsError(f"HAMT {cid} is deeper than {MAX_SHARD_DEPTH} levels")
    try:
        data = decode_data(pb.data or b"")
    except ProtocolError as exc:
        raise UnixFsError(f"HAMT node {cid}: {exc}") from exc
    if data.type != DataType.HAMT_SHARD:
        raise UnixFsError(f"{cid} is inside a HAMT but is not a shard node")
    if data.fanout != HAMT_FANOUT or data.hash_type != HAMT_HASH_MURMUR3:
        raise UnixFsError(f"HAMT {cid}: unsupported fanout or hash (only 256 / murmur3)")
