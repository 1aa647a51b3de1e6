"""The UnixFS Data message carried in dag-pb nodes (https://specs.ipfs.tech/unixfs/).

Fields: Type (1), Data (2), filesize (3), blocksizes (4, repeated), hashType (5), fanout (6),
mode (7), mtime (8). The encoder writes what Helia and Kubo write, in field order: Data only
when non-empty, filesize for files and raw nodes, one blocksizes entry per child.
"""

import enum
from dataclasses import dataclass
from typing import Final

from zion.protocols import limits
from zion.protocols.errors import ProtocolError
from zion.protocols.protowire import (
    VARINT,
    field_bytes,
    field_varint,
    iter_fields,
    read_varint,
)

__all__ = [
    "HAMT_FANOUT",
    "HAMT_HASH_MURMUR3",
    "DataType",
    "UnixFsData",
    "decode_data",
    "encode_data",
]

#: The only HAMT parameters Kubo and Helia write: murmur3-x64-64 (multicodec 0x22), 256 buckets.
HAMT_HASH_MURMUR3: Final = 0x22
HAMT_FANOUT: Final = 256


class DataType(enum.IntEnum):
    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5


_TYPE: Final = 1
_DATA: Final = 2
_FILESIZE: Final = 3
_BLOCKSIZES: Final = 4
_HASH_TYPE: Final = 5
_FANOUT: Final = 6
_MODE: Final = 7
_MTIME: Final = 8


@dataclass(frozen=True, slots=True)
class UnixFsData:
    type: DataType
    data: bytes = b""
    filesize: int | None = None
    blocksizes: tuple[int, ...] = ()
    hash_type: int | None = None
    fanout: int | None = None
    mode: int | None = None
    #: The encoded UnixTime message, kept opaque: the exporter does not need it.
    mtime: bytes | None = None

    @property
    def is_directory(self) -> bool:
        return self.type in (DataType.DIRECTORY, DataType.HAMT_SHARD)


def encode_data(node: UnixFsData) -> bytes:
    parts = [field_varint(_TYPE, node.type)]
    if node.data:
        parts.append(field_bytes(_DATA, node.data))
    if node.filesize is not None:
        parts.append(field_varint(_FILESIZE, node.filesize))
    parts.extend(field_varint(_BLOCKSIZES, size) for size in node.blocksizes)
    if node.hash_type is not None:
        parts.append(field_varint(_HASH_TYPE, node.hash_type))
    if node.fanout is not None:
        parts.append(field_varint(_FANOUT, node.fanout))
    if node.mode is not None:
        parts.append(field_varint(_MODE, node.mode))
    if node.mtime is not None:
        parts.append(field_bytes(_MTIME, node.mtime))
    return b"".join(parts)


def decode_data(encoded: bytes | memoryview) -> UnixFsData:
    """Decode a UnixFS Data message; ProtocolError if it is malformed."""
    if len(encoded) > limits.MAX_BLOCK_BYTES:
        raise ProtocolError("oversized", "UnixFS data larger than a block")
    numbers: dict[int, int] = {}
    byte_fields: dict[int, bytes] = {}
    blocksizes: list[int] = []
    for number, wire_type, value in iter_fields(encoded):
        if number == _BLOCKSIZES:
            blocksizes.extend(_blocksizes(wire_type, value))
            if len(blocksizes) > limits.MAX_DAG_PB_LINKS:
                raise ProtocolError("oversized", "too many UnixFS blocksizes")
        elif number in numbers or number in byte_fields:
            raise ProtocolError("malformed", f"UnixFS field {number} twice")
        elif number in (_DATA, _MTIME):
            if isinstance(value, int):
                raise ProtocolError("malformed", f"UnixFS field {number} is not bytes")
            byte_fields[number] = bytes(value)
        elif number in (_TYPE, _FILESIZE, _HASH_TYPE, _FANOUT, _MODE):
            if not isinstance(value, int):
                raise ProtocolError("malformed", f"UnixFS field {number} is not a number")
            numbers[number] = value
        # Unknown fields are skipped as protobuf readers do: newer writers may add some.
    if _TYPE not in numbers:
        raise ProtocolError("malformed", "UnixFS data without a type")
    try:
        kind = DataType(numbers[_TYPE])
    except ValueError:
        raise ProtocolError("malformed", "unknown UnixFS type") from None
    return UnixFsData(
        kind,
        data=byte_fields.get(_DATA, b""),
        filesize=numbers.get(_FILESIZE),
        blocksizes=tuple(blocksizes),
        hash_type=numbers.get(_HASH_TYPE),
        fanout=numbers.get(_FANOUT),
        mode=numbers.get(_MODE),
        mtime=byte_fields.get(_MTIME),
    )


def _blocksizes(wire_type: int, value: int | memoryview) -> list[int]:
    """One entry, or several when a writer packed them (proto3 style)."""
    if wire_type == VARINT and isinstance(value, int):
        return [value]
    assert isinstance(value, memoryview)
    sizes = []
    offset = 0
    while offset < len(value):
        size, offset = read_varint(value, offset)
        sizes.append(size)
    return sizes
