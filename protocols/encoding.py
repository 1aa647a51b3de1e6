"""Canonical DAG-CBOR: the one encoding of every signed record.

cbor2's canonical mode already sorts map keys length-first and uses minimal integer widths,
which is DAG-CBOR's ordering. Decoding is where DAG-CBOR is stricter than CBOR, and cbor2 is
lenient (duplicate keys, trailing bytes, indefinite lengths, other tags all pass), so a decoded
value is type-checked and re-encoded, and only input identical to its canonical form is
accepted. Floats are not allowed at all: no Zion record needs one, and float widths are the
usual source of non-canonical encodings.
"""

from typing import Any

import cbor2

from zion.protocols.errors import ProtocolError

#: DAG-CBOR's only tag: a CID link (payload is 0x00 + binary CID).
CID_TAG = 42

#: Nesting allowed in a record; Zion records need 4.
MAX_DEPTH = 16

_SCALARS = (str, bytes, bool, type(None))


def encode(value: Any) -> bytes:
    """Encode ``value`` as canonical DAG-CBOR. Raises ProtocolError for unencodable values."""
    _check(value, 0)
    return cbor2.dumps(value, canonical=True)


def encode_unchecked(value: Any) -> bytes:
    """Encode a value that came out of ``decode`` (so is known to be encodable)."""
    return cbor2.dumps(value, canonical=True)


def decode(data: bytes, *, check_types: bool = True) -> Any:
    """Decode strict canonical DAG-CBOR. Raises ProtocolError for anything else.

    ``check_types=False`` skips the walk over every value, for callers that check each field
    against a schema anyway (records); canonical form is checked either way.
    """
    try:
        value = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, OverflowError, MemoryError, RecursionError) as exc:
        raise ProtocolError("malformed", f"not CBOR: {exc}") from None
    if check_types:
        _check(value, 0)
    try:
        canonical = cbor2.dumps(value, canonical=True)
    except (cbor2.CBOREncodeError, TypeError, ValueError, RecursionError) as exc:
        # cbor2 decodes semantic tags into objects (shared references that form cycles,
        # MIME messages, ...) that cannot be encoded again: none of them is DAG-CBOR.
        raise ProtocolError("malformed", f"not DAG-CBOR: {exc}") from None
    if canonical != data:
        raise ProtocolError("non-canonical", "not in canonical DAG-CBOR form")
    return value


def _check(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ProtocolError("malformed", f"nested deeper than {MAX_DEPTH}")
    if isinstance(value, (bool, *_SCALARS)):
        return
    if isinstance(value, int):
        if not -(2**64) <= value < 2**64:
            raise ProtocolError("malformed", "integer out of 64-bit range")
        return
    if isinstance(value, list):
        for item in value:
            _check(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ProtocolError("malformed", "map key is not a string")
            _check(item, depth + 1)
        return
    if isinstance(value, cbor2.CBORTag) and value.tag == CID_TAG:
        if not isinstance(value.value, bytes) or value.value[:1] != b"\x00":
            raise ProtocolError("malformed", "bad CID link")
        return
    raise ProtocolError("malformed", f"type {type(value).__name__} is not allowed in DAG-CBOR")
