"""Bitswap 1.2.0 messages (https://specs.ipfs.tech/bitswap-protocol/), as Helia and Kubo speak it.

Message: wantlist (1) {entries (1) {block (1) CID bytes, priority (2), cancel (3), wantType (4)
Block=0 Have=1, sendDontHave (5)}, full (2)}; blocks (2, Bitswap 1.0: data only, CIDv0);
payload (3) {prefix (1), data (2)}; blockPresences (4) {cid (1), type (2) Have=0 DontHave=1};
pendingBytes (5). Frames are uvarint-length-prefixed. A block's CID is rebuilt from its prefix
(version, codec, hash code, digest length) by hashing its data, so a block can only ever be
the block its CID names: there is nothing to forge, only to waste, and limits bound that.

Notes from reading Helia and boxo: docs/notes/bitswap-interop.md.
"""

import enum
import hashlib
from dataclasses import dataclass, field
from typing import Final

from zion.protocols import limits
from zion.protocols.cid import DAG_PB, IDENTITY, SHA2_256, Cid
from zion.protocols.errors import ProtocolError
from zion.protocols.framing import encode_varint
from zion.protocols.protowire import (
    LEN,
    VARINT,
    field_bytes,
    field_varint,
    iter_fields,
    read_varint,
)

PROTOCOL_ID: Final = "/ipfs/bitswap/1.2.0"
#: What we answer: 1.2.0 first; 1.1.0 and 1.0.0 messages are subsets of it.
PROTOCOL_IDS: Final = ("/ipfs/bitswap/1.2.0", "/ipfs/bitswap/1.1.0", "/ipfs/bitswap/1.0.0")


class WantType(enum.IntEnum):
    BLOCK = 0
    HAVE = 1


@dataclass(frozen=True, slots=True)
class Want:
    cid: Cid
    want_type: WantType = WantType.BLOCK
    cancel: bool = False
    send_dont_have: bool = False
    priority: int = 1


@dataclass(slots=True)
class Message:
    wants: list[Want] = field(default_factory=list)
    #: The wantlist replaces the sender's previous one (instead of adding to it).
    full: bool = False
    blocks: list[tuple[Cid, bytes]] = field(default_factory=list)
    haves: list[Cid] = field(default_factory=list)
    dont_haves: list[Cid] = field(default_factory=list)
    #: Blocks whose hash function we do not support: dropped, counted.
    skipped_blocks: int = 0

    def is_empty(self) -> bool:
        return not (self.wants or self.full or self.blocks or self.haves or self.dont_haves)


# --- encoding ----------------------------------------------------------------------------


def encode_message(message: Message) -> bytes:
    parts = []
    if message.wants or message.full:
        entries = b"".join(field_bytes(1, _encode_want(want)) for want in message.wants)
        wantlist = entries + (field_varint(2, 1) if message.full else b"")
        parts.append(field_bytes(1, wantlist))
    for cid, data in message.blocks:
        parts.append(field_bytes(3, field_bytes(1, prefix_of(cid)) + field_bytes(2, data)))
    for cid in message.haves:
        parts.append(field_bytes(4, field_bytes(1, cid.raw)))
    for cid in message.dont_haves:
        parts.append(field_bytes(4, field_bytes(1, cid.raw) + field_varint(2, 1)))
    return b"".join(parts)


def _encode_want(want: Want) -> bytes:
    encoded = field_bytes(1, want.cid.raw) + field_varint(2, want.priority)
    if want.cancel:
        encoded += field_varint(3, 1)
    if want.want_type != WantType.BLOCK:
        encoded += field_varint(4, want.want_type)
    if want.send_dont_have:
        encoded += field_varint(5, 1)
    return encoded


def prefix_of(cid: Cid) -> bytes:
    """Version, codec, hash code and digest length: always in full, also for CIDv0 (an empty
    prefix makes Helia ignore the block and boxo reject the whole message)."""
    code, offset = read_varint(cid.multihash, 0)
    length, _ = read_varint(cid.multihash, offset)
    return b"".join(encode_varint(v) for v in (cid.version, cid.codec, code, length))


#: Upper bound of the bytes a block's framing adds to a message (keys, lengths, prefix).
BLOCK_OVERHEAD: Final = 32


# --- decoding ----------------------------------------------------------------------------


def decode_message(data: bytes) -> Message:
    """Decode one Bitswap message; ProtocolError for anything malformed or over the limits."""
    if len(data) > limits.MAX_BITSWAP_MESSAGE_BYTES:
        raise ProtocolError("oversized", f"bitswap message of {len(data)} bytes")
    message = Message()
    for number, wire_type, value in iter_fields(data):
        if number in (1, 2, 3, 4) and (wire_type != LEN or isinstance(value, int)):
            raise ProtocolError("malformed", f"bitswap field {number} is not length-delimited")
        if isinstance(value, int):
            continue  # pendingBytes (5) and unknown varints: nothing to act on
        if number == 1:
            _decode_wantlist(value, message)
        elif number == 2:
            block = bytes(value)
            _add_block(message, Cid(0, DAG_PB, b"\x12\x20" + hashlib.sha256(block).digest()), block)
        elif number == 3:
            _decode_payload(value, message)
        elif number == 4:
            _decode_presence(value, message)
        if len(message.blocks) + len(message.haves) + len(message.dont_haves) > (
            limits.MAX_BITSWAP_BLOCKS
        ):
            raise ProtocolError("oversized", "too many blocks or presences in one message")
    return message


def _decode_wantlist(data: memoryview, message: Message) -> None:
    for number, wire_type, value in iter_fields(data):
        if number == 1 and wire_type == LEN and not isinstance(value, int):
            if len(message.wants) >= limits.MAX_BITSWAP_WANTS:
                raise ProtocolError("oversized", "too many wantlist entries")
            message.wants.append(_decode_want(value))
        elif number == 2 and wire_type == VARINT:
            message.full = bool(value)
        else:
            raise ProtocolError("malformed", f"bad wantlist field {number}")


def _decode_want(data: memoryview) -> Want:
    cid: Cid | None = None
    numbers: dict[int, int] = {}
    for number, _wire_type, value in iter_fields(data):
        if number == 1 and not isinstance(value, int):
            cid = Cid.from_bytes(bytes(value))
        elif number in (2, 3, 4, 5) and isinstance(value, int):
            numbers[number] = value
        else:
            raise ProtocolError("malformed", f"bad wantlist entry field {number}")
    if cid is None:
        raise ProtocolError("malformed", "wantlist entry without a CID")
    try:
        want_type = WantType(numbers.get(4, 0))
    except ValueError:
        raise ProtocolError("malformed", "unknown want type") from None
    return Want(
        cid,
        want_type,
        cancel=bool(numbers.get(3, 0)),
        send_dont_have=bool(numbers.get(5, 0)),
        priority=numbers.get(2, 1),
    )


def _decode_payload(data: memoryview, message: Message) -> None:
    prefix: bytes | None = None
    block: bytes | None = None
    for number, _wire_type, value in iter_fields(data):
        if number == 1 and not isinstance(value, int):
            prefix = bytes(value)
        elif number == 2 and not isinstance(value, int):
            block = bytes(value)
        else:
            raise ProtocolError("malformed", f"bad payload field {number}")
    if prefix is None or block is None:
        raise ProtocolError("malformed", "payload block without prefix or data")
    offset = 0
    values = []
    for _ in range(4):
        value, offset = read_varint(prefix, offset)
        values.append(value)
    if offset != len(prefix):
        raise ProtocolError("malformed", "trailing bytes after a block prefix")
    version, codec, code, length = values
    if version not in (0, 1) or (version == 0 and codec != DAG_PB):
        raise ProtocolError("malformed", f"bad CID version {version} in a block prefix")
    if code == SHA2_256 and length == 32:
        multihash = b"\x12\x20" + hashlib.sha256(block).digest()
    elif code == IDENTITY and length == len(block) <= 128:
        multihash = b"\x00" + encode_varint(length) + block
    else:
        message.skipped_blocks += 1
        return
    _add_block(message, Cid(version, codec, multihash), block)


def _add_block(message: Message, cid: Cid, block: bytes) -> None:
    if len(block) > limits.MAX_BLOCK_BYTES:
        raise ProtocolError("oversized", f"block of {len(block)} bytes")
    message.blocks.append((cid, block))


def _decode_presence(data: memoryview, message: Message) -> None:
    cid: Cid | None = None
    kind = 0
    for number, _wire_type, value in iter_fields(data):
        if number == 1 and not isinstance(value, int):
            cid = Cid.from_bytes(bytes(value))
        elif number == 2 and isinstance(value, int):
            kind = value
        else:
            raise ProtocolError("malformed", f"bad block presence field {number}")
    if cid is None or kind not in (0, 1):
        raise ProtocolError("malformed", "block presence without a CID or with an unknown type")
    (message.haves if kind == 0 else message.dont_haves).append(cid)
