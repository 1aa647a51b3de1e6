"""CAR v1 (https://ipld.io/specs/transport/car/carv1/): a DAG as one stream of blocks.

A header (varint length + DAG-CBOR ``{"roots": [CID...], "version": 1}``) and then sections,
each a varint length followed by a binary CID and the block bytes. Blocks are not verified
here: storing them does that.
"""

from collections.abc import Iterator, Sequence
from typing import IO

import cbor2

from zion.protocols import encoding, limits
from zion.protocols.cid import Cid
from zion.protocols.errors import ProtocolError
from zion.protocols.framing import encode_varint
from zion.protocols.protowire import read_varint

__all__ = ["encode_header", "encode_section", "read_car"]

#: The largest CID in a section: version, codec, hash code, length (4 varints) and a digest.
_MAX_CID_BYTES = 4 * 10 + 128


def encode_header(roots: Sequence[Cid]) -> bytes:
    header = encoding.encode(
        {
            "roots": [cbor2.CBORTag(encoding.CID_TAG, b"\x00" + root.raw) for root in roots],
            "version": 1,
        }
    )
    return encode_varint(len(header)) + header


def encode_section(cid: Cid, block: bytes) -> bytes:
    raw = cid.raw
    return encode_varint(len(raw) + len(block)) + raw + block


def read_car(stream: IO[bytes]) -> tuple[list[Cid], Iterator[tuple[Cid, bytes]]]:
    """The roots, and an iterator over the sections, read lazily from ``stream``."""
    header = _read_frame(stream, limits.MAX_CAR_HEADER_BYTES)
    if header is None:
        raise ProtocolError("malformed", "empty CAR file")
    value = encoding.decode(header)
    if (
        not isinstance(value, dict)
        or value.get("version") != 1
        or set(value)
        != {
            "roots",
            "version",
        }
    ):
        raise ProtocolError("malformed", "not a CAR v1 header")
    roots_value = value["roots"]
    if not isinstance(roots_value, list) or len(roots_value) > limits.MAX_CAR_ROOTS:
        raise ProtocolError("malformed", "CAR roots must be a short list")
    roots = []
    for root in roots_value:
        if not isinstance(root, cbor2.CBORTag) or root.tag != encoding.CID_TAG:
            raise ProtocolError("malformed", "CAR root is not a CID")
        roots.append(Cid.from_bytes(root.value[1:]))
    return roots, _sections(stream)


def _sections(stream: IO[bytes]) -> Iterator[tuple[Cid, bytes]]:
    while (section := _read_frame(stream, limits.MAX_BLOCK_BYTES + _MAX_CID_BYTES)) is not None:
        cid, offset = Cid.read_from(section, 0)
        block = section[offset:]
        if len(block) > limits.MAX_BLOCK_BYTES:
            raise ProtocolError("oversized", f"CAR block {cid} of {len(block)} bytes")
        yield cid, block


def _read_frame(stream: IO[bytes], limit: int) -> bytes | None:
    """The next varint-prefixed frame, or None at a clean end of stream."""
    prefix = b""
    while True:
        byte = stream.read(1)
        if not byte:
            if prefix:
                raise ProtocolError("malformed", "CAR file ends inside a length")
            return None
        prefix += byte
        if not byte[0] & 0x80:
            break
        if len(prefix) >= 10:
            raise ProtocolError("malformed", "CAR length longer than 10 bytes")
    length, _ = read_varint(prefix, 0)
    if length > limit:
        raise ProtocolError("oversized", f"CAR section of {length} bytes")
    data = stream.read(length)
    if len(data) != length:
        raise ProtocolError("malformed", "CAR file ends inside a section")
    return data
