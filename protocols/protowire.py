"""The protobuf wire format, just enough for dag-pb, UnixFS and Bitswap messages.

Written by hand rather than with a protobuf runtime: these messages have a handful of fields,
the encoders must produce the exact bytes other IPFS implementations produce (the CIDs depend
on it), and the decoders face untrusted peers, so every read is bounded and every surprise is a
ProtocolError rather than whatever a generated parser does.
"""

from collections.abc import Iterator
from typing import Final

from zion.protocols.errors import ProtocolError
from zion.protocols.framing import encode_varint

__all__ = ["LEN", "VARINT", "encode_varint", "field_bytes", "field_varint", "iter_fields"]

VARINT: Final = 0
LEN: Final = 2

#: A uint64 needs at most 10 varint bytes.
_MAX_VARINT_BYTES: Final = 10


def field_varint(number: int, value: int) -> bytes:
    return encode_varint(number << 3 | VARINT) + encode_varint(value)


def field_bytes(number: int, value: bytes) -> bytes:
    return encode_varint(number << 3 | LEN) + encode_varint(len(value)) + value


def read_varint(data: bytes | memoryview, offset: int) -> tuple[int, int]:
    """Decode a varint at ``offset``; return (value, offset after it)."""
    value = 0
    for index in range(_MAX_VARINT_BYTES):
        if offset + index >= len(data):
            raise ProtocolError("malformed", "truncated varint")
        byte = data[offset + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            if index and not byte:
                raise ProtocolError("malformed", "varint not minimally encoded")
            if value >= 1 << 64:
                raise ProtocolError("malformed", "varint larger than 64 bits")
            return value, offset + index + 1
    raise ProtocolError("malformed", "varint longer than 10 bytes")


def iter_fields(data: bytes | memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """Yield (field number, wire type, value) for each field: an int for varints, a
    memoryview for length-delimited fields. Other wire types are refused."""
    view = memoryview(data)
    offset = 0
    while offset < len(view):
        key, offset = read_varint(view, offset)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ProtocolError("malformed", "field number 0")
        if wire_type == VARINT:
            value, offset = read_varint(view, offset)
            yield number, wire_type, value
        elif wire_type == LEN:
            length, offset = read_varint(view, offset)
            if offset + length > len(view):
                raise ProtocolError("malformed", "field runs past the end of the message")
            yield number, wire_type, view[offset : offset + length]
            offset += length
        else:
            raise ProtocolError("malformed", f"unsupported wire type {wire_type}")
