"""Content identifiers for records and for the content they point at.

Record IDs are CIDv1 (dag-cbor, sha2-256) in base32: computed by hand because it is on the hot
path of gossip and sync (py-cid takes ~36 µs per CID, a third of an Ed25519 verification) and is
only a fixed prefix and a base32 encoding. Content CIDs (``Cid``, below) likewise.
"""

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Final

import base58

from zion.protocols import limits
from zion.protocols.errors import ProtocolError
from zion.protocols.framing import encode_varint
from zion.protocols.protowire import read_varint

# CIDv1 (0x01), dag-cbor (0x71), sha2-256 (0x12) of 32 bytes (0x20).
_DAG_CBOR_SHA256_PREFIX: Final = b"\x01\x71\x12\x20"
RECORD_ID_BYTES: Final = len(_DAG_CBOR_SHA256_PREFIX) + 32


def record_cid_bytes(block: bytes) -> bytes:
    return _DAG_CBOR_SHA256_PREFIX + hashlib.sha256(block).digest()


def cid_bytes_to_str(cid: bytes) -> str:
    """Multibase base32 (lower case, no padding), the form Kubo and Helia print for CIDv1."""
    return "b" + base64.b32encode(cid).decode("ascii").rstrip("=").lower()


def record_id(block: bytes) -> str:
    return cid_bytes_to_str(record_cid_bytes(block))


def record_id_to_bytes(record_id: str) -> bytes:
    """Parse a record ID string; ProtocolError unless it is a dag-cbor sha2-256 CIDv1."""
    if not isinstance(record_id, str) or not record_id.startswith("b") or len(record_id) > 80:
        raise ProtocolError("bad-id", "not a base32 CIDv1")
    text = record_id[1:].upper()
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError:
        raise ProtocolError("bad-id", "not base32") from None
    if len(raw) != RECORD_ID_BYTES or not raw.startswith(_DAG_CBOR_SHA256_PREFIX):
        raise ProtocolError("bad-id", "not a dag-cbor sha2-256 CIDv1")
    return raw


def validate_content_cid(text: str) -> str:
    """Check that ``text`` is a CID this node can use (Cid.parse); return it unchanged."""
    Cid.parse(text)
    return text


# --- content CIDs ------------------------------------------------------------------------------
#
# Parsed and printed by hand for the same reason as record IDs: Bitswap and the importer make
# one per block. Multibase prefixes accepted: b/B (base32), z (base58btc), f/F (base16),
# k (base36, as in subdomain gateways); CIDv0 is bare base58btc ("Qm...").

RAW: Final = 0x55
DAG_PB: Final = 0x70
DAG_CBOR: Final = 0x71
SHA2_256: Final = 0x12
IDENTITY: Final = 0x00

#: Codecs whose blocks the node stores and serves.
KNOWN_CODECS: Final = frozenset({RAW, DAG_PB, DAG_CBOR})
#: Identity "hashes" carry the block itself; bound them like Kubo does.
MAX_IDENTITY_DIGEST: Final = 128
_MAX_DIGEST: Final = 64
_BASE36: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
_BASE_ALPHABETS: Final = {
    "b": frozenset("abcdefghijklmnopqrstuvwxyz234567"),
    "B": frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
    "z": frozenset("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"),
    "f": frozenset("0123456789abcdef"),
    "F": frozenset("0123456789ABCDEF"),
    "k": frozenset(_BASE36),
}


@dataclass(frozen=True, slots=True)
class Cid:
    """A content identifier: version, codec and multihash (hash code, length, digest)."""

    version: int
    codec: int
    multihash: bytes

    @classmethod
    def for_block(cls, codec: int, block: bytes, version: int = 1) -> "Cid":
        multihash = b"\x12\x20" + hashlib.sha256(block).digest()
        if version == 0 and codec != DAG_PB:
            raise ProtocolError("bad-cid", "CIDv0 is always dag-pb")
        return cls(version, codec, multihash)

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Cid":
        """Parse a binary CID (a bare sha2-256 multihash is CIDv0)."""
        if len(raw) == 34 and raw[:2] == b"\x12\x20":
            return cls(0, DAG_PB, bytes(raw))
        version, offset = read_varint(raw, 0)
        if version != 1:
            raise ProtocolError("bad-cid", f"unsupported CID version {version}")
        codec, offset = read_varint(raw, offset)
        multihash = bytes(raw[offset:])
        _check_multihash(multihash)
        return cls(1, codec, multihash)

    @classmethod
    def read_from(cls, data: bytes | memoryview, offset: int) -> tuple["Cid", int]:
        """Parse the binary CID that starts at ``offset`` in a longer buffer (CAR sections,
        Bitswap prefixes); return it and the offset after it."""
        if bytes(data[offset : offset + 2]) == b"\x12\x20":
            end = offset + 34
            if end > len(data):
                raise ProtocolError("bad-cid", "truncated CIDv0")
            return cls(0, DAG_PB, bytes(data[offset:end])), end
        start = offset
        _, offset = read_varint(data, offset)  # version, checked by from_bytes
        _, offset = read_varint(data, offset)  # codec
        _, offset = read_varint(data, offset)  # hash code
        length, offset = read_varint(data, offset)
        end = offset + length
        if end > len(data) or length > MAX_IDENTITY_DIGEST:
            raise ProtocolError("bad-cid", "truncated or oversized multihash")
        return cls.from_bytes(bytes(data[start:end])), end

    @classmethod
    def parse(cls, text: str) -> "Cid":
        """Parse a CID as people and other implementations write it."""
        if not isinstance(text, str) or not 2 <= len(text) <= limits.MAX_CID_CHARS:
            raise ProtocolError("bad-cid", "not a CID")
        try:
            if len(text) == 46 and text.startswith("Qm"):
                return cls.from_bytes(base58.b58decode(text))
            prefix, body = text[0], text[1:]
            alphabet = _BASE_ALPHABETS.get(prefix)
            if alphabet is None:
                raise ProtocolError("bad-cid", f"unknown multibase prefix {prefix!r}")
            # int(), fromhex() and b32decode() each accept more than their alphabet
            # (signs, "_", spaces, lower case): only the alphabet itself is a CID.
            if not body or not set(body) <= alphabet:
                raise ProtocolError("bad-cid", f"{text[:80]!r} is not a CID")
            if prefix in "bB":
                body = body.upper()
                raw = base64.b32decode(body + "=" * (-len(body) % 8))
            elif prefix == "z":
                raw = base58.b58decode(body)
            elif prefix in "fF":
                raw = bytes.fromhex(body)
            else:
                number = int(body, 36)
                raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
        except (ValueError, binascii.Error, OverflowError):
            raise ProtocolError("bad-cid", f"{text[:80]!r} is not a CID") from None
        cid = cls.from_bytes(raw)
        if cid.version == 0:
            raise ProtocolError("bad-cid", "a CIDv0 is written without a multibase prefix")
        return cid

    @property
    def raw(self) -> bytes:
        """The binary form (as in dag-pb links, Bitswap and CAR files)."""
        if self.version == 0:
            return self.multihash
        return encode_varint(1) + encode_varint(self.codec) + self.multihash

    @property
    def hash_code(self) -> int:
        return read_varint(self.multihash, 0)[0]

    @property
    def digest(self) -> bytes:
        _, offset = read_varint(self.multihash, 0)
        _, offset = read_varint(self.multihash, offset)
        return self.multihash[offset:]

    def __str__(self) -> str:
        if self.version == 0:
            return str(base58.b58encode(self.multihash).decode("ascii"))
        return cid_bytes_to_str(self.raw)

    def base36(self) -> str:
        """The base36 form, which fits a DNS label (subdomain gateways)."""
        number = int.from_bytes(self.to_v1().raw, "big")
        digits = ""
        while number:
            number, digit = divmod(number, 36)
            digits = _BASE36[digit] + digits
        return "k" + digits

    def to_v1(self) -> "Cid":
        return Cid(1, self.codec, self.multihash) if self.version == 0 else self

    def matches(self, block: bytes) -> bool:
        """Whether ``block`` hashes to this CID. ProtocolError for unsupported hashes."""
        code, offset = read_varint(self.multihash, 0)
        _, offset = read_varint(self.multihash, offset)
        digest = self.multihash[offset:]
        if code == SHA2_256:
            return hashlib.sha256(block).digest() == digest
        if code == IDENTITY:
            return bytes(block) == digest
        raise ProtocolError("unsupported-hash", f"multihash code 0x{code:x} is not supported")

    def __repr__(self) -> str:
        return f"Cid({self})"


def _check_multihash(multihash: bytes) -> None:
    code, offset = read_varint(multihash, 0)
    length, offset = read_varint(multihash, offset)
    if len(multihash) - offset != length:
        raise ProtocolError("bad-cid", "multihash length does not match its digest")
    limit = MAX_IDENTITY_DIGEST if code == IDENTITY else _MAX_DIGEST
    if length > limit:
        raise ProtocolError("bad-cid", f"multihash digest of {length} bytes")
