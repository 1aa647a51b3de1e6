"""dag-pb, the IPLD codec of UnixFS nodes (https://ipld.io/specs/codecs/dag-pb/spec/).

Encoding is canonical as the spec and every implementation have it: links (field 2) before data
(field 1), each link as Hash (1), Name (2), Tsize (3), links sorted by name bytes (stably, so file
chunks named "" keep their order). Decoding follows the spec's strict rules (field order, no
unknown fields, no duplicates) but accepts the optional parts other encoders omit (Name, Tsize)
and unsorted links: a block fetched by CID is already pinned to its bytes by the hash.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from zion.protocols import limits
from zion.protocols.cid import Cid
from zion.protocols.errors import ProtocolError
from zion.protocols.protowire import LEN, VARINT, field_bytes, field_varint, iter_fields

__all__ = ["PBLink", "PBNode", "decode_node", "encode_node"]

_NODE_DATA: Final = 1
_NODE_LINKS: Final = 2
_LINK_HASH: Final = 1
_LINK_NAME: Final = 2
_LINK_TSIZE: Final = 3


@dataclass(frozen=True, slots=True)
class PBLink:
    cid: Cid
    name: str = ""
    #: Bytes of the whole DAG below the link (its block plus everything it links to).
    tsize: int | None = None


@dataclass(frozen=True, slots=True)
class PBNode:
    data: bytes | None
    links: tuple[PBLink, ...] = ()


def encode_node(data: bytes | None, links: Sequence[PBLink] = ()) -> bytes:
    ordered = sorted(links, key=lambda link: link.name.encode("utf-8"))
    parts = [field_bytes(_NODE_LINKS, _encode_link(link)) for link in ordered]
    if data is not None:
        parts.append(field_bytes(_NODE_DATA, data))
    return b"".join(parts)


def _encode_link(link: PBLink) -> bytes:
    encoded = field_bytes(_LINK_HASH, link.cid.raw) + field_bytes(_LINK_NAME, link.name.encode())
    if link.tsize is not None:
        encoded += field_varint(_LINK_TSIZE, link.tsize)
    return encoded


def decode_node(block: bytes | memoryview) -> PBNode:
    """Decode a dag-pb block; ProtocolError unless it is canonical dag-pb."""
    if len(block) > limits.MAX_BLOCK_BYTES:
        raise ProtocolError("oversized", f"dag-pb block of {len(block)} bytes")
    data: bytes | None = None
    links: list[PBLink] = []
    for number, wire_type, value in iter_fields(block):
        if wire_type != LEN or isinstance(value, int):
            raise ProtocolError("malformed", f"dag-pb field {number} is not length-delimited")
        if number == _NODE_LINKS:
            if data is not None:
                raise ProtocolError("malformed", "dag-pb link after the data field")
            if len(links) >= limits.MAX_DAG_PB_LINKS:
                raise ProtocolError("oversized", "too many dag-pb links")
            links.append(_decode_link(value))
        elif number == _NODE_DATA:
            if data is not None:
                raise ProtocolError("malformed", "dag-pb data field twice")
            data = bytes(value)
        else:
            raise ProtocolError("malformed", f"unknown dag-pb node field {number}")
    return PBNode(data, tuple(links))


def _decode_link(encoded: memoryview) -> PBLink:
    cid: Cid | None = None
    name = ""
    tsize: int | None = None
    expected = _LINK_HASH
    for number, wire_type, value in iter_fields(encoded):
        if number < expected:
            raise ProtocolError("malformed", "dag-pb link fields out of order or repeated")
        expected = number + 1
        if number == _LINK_HASH and wire_type == LEN and not isinstance(value, int):
            cid = Cid.from_bytes(bytes(value))
        elif number == _LINK_NAME and wire_type == LEN and not isinstance(value, int):
            try:
                name = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolError("malformed", "dag-pb link name is not UTF-8") from None
        elif number == _LINK_TSIZE and wire_type == VARINT and isinstance(value, int):
            tsize = value
        else:
            raise ProtocolError("malformed", f"bad dag-pb link field {number}")
    if cid is None:
        raise ProtocolError("malformed", "dag-pb link without a hash")
    return PBLink(cid, name, tsize)
