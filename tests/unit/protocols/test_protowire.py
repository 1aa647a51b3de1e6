import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zion.protocols.errors import ProtocolError
from zion.protocols.protowire import (
    LEN,
    VARINT,
    field_bytes,
    field_varint,
    iter_fields,
    read_varint,
)


def test_fields_round_trip() -> None:
    message = field_varint(1, 2) + field_bytes(2, b"hello") + field_varint(3, 300)
    fields = [(n, t, v if isinstance(v, int) else bytes(v)) for n, t, v in iter_fields(message)]
    assert fields == [(1, VARINT, 2), (2, LEN, b"hello"), (3, VARINT, 300)]


def test_known_encoding() -> None:
    # UnixFS Data of an empty file, as every IPFS implementation writes it.
    assert field_varint(1, 2) + field_varint(3, 0) == b"\x08\x02\x18\x00"


@pytest.mark.parametrize(
    "data",
    [
        b"\x80",  # truncated varint
        b"\x80\x00",  # not minimal
        b"\xff" * 10 + b"\x01",  # longer than 10 bytes
        b"\xff" * 9 + b"\x7f",  # more than 64 bits
    ],
)
def test_bad_varints_are_refused(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        read_varint(data, 0)


@pytest.mark.parametrize(
    "message",
    [
        b"\x00\x01",  # field number 0
        b"\x12\x05abc",  # length past the end
        b"\x09" + b"\x00" * 8,  # wire type 1 (fixed64) is not used by these formats
        b"\x08",  # key without value
    ],
)
def test_malformed_messages_are_refused(message: bytes) -> None:
    with pytest.raises(ProtocolError):
        list(iter_fields(message))


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_round_trip(value: int) -> None:
    encoded = field_varint(1, value)[1:]
    assert read_varint(encoded, 0) == (value, len(encoded))


@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        list(iter_fields(data))
