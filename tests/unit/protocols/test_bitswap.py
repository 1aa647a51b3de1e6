import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zion.protocols import limits
from zion.protocols.bitswap import Message, Want, WantType, decode_message, encode_message
from zion.protocols.cid import DAG_PB, RAW, Cid
from zion.protocols.errors import ProtocolError
from zion.protocols.protowire import field_bytes, field_varint

HELLO = Cid.for_block(RAW, b"hello")


def test_round_trip() -> None:
    v0 = Cid.for_block(DAG_PB, b"\x0a\x00", version=0)
    message = Message(
        wants=[
            Want(HELLO, WantType.HAVE, send_dont_have=True),
            Want(v0, cancel=True, priority=7),
        ],
        full=True,
        blocks=[(HELLO, b"hello"), (v0, b"\x0a\x00")],
        haves=[HELLO],
        dont_haves=[v0],
    )
    decoded = decode_message(encode_message(message))
    assert decoded == message


def test_helias_want_block_bytes() -> None:
    """A want-block frame exactly as Helia 4.0.14 sends it (every field explicit)."""
    frame = bytes.fromhex("340a320a2e0a24") + HELLO.raw + bytes.fromhex("10011800200028011000")
    assert frame[0] == len(frame) - 1
    decoded = decode_message(frame[1:])
    assert decoded.wants == [Want(HELLO, WantType.BLOCK, send_dont_have=True)]
    assert not decoded.full


def test_helias_block_reply_bytes() -> None:
    """Helia's reply carrying "hello": an empty wantlist, then the payload."""
    wire = bytes.fromhex("0a021000" + "1a0d" + "0a0401551220" + "1205") + b"hello"
    decoded = decode_message(wire)
    assert decoded.blocks == [(HELLO, b"hello")]
    assert decoded.wants == [] and not decoded.full


def test_we_always_send_the_whole_prefix() -> None:
    v0 = Cid.for_block(DAG_PB, b"x", version=0)
    wire = encode_message(Message(blocks=[(v0, b"x")]))
    assert bytes.fromhex("00701220") in wire


def test_bitswap_1_0_blocks_are_cidv0() -> None:
    decoded = decode_message(field_bytes(2, b"\x0a\x00"))
    assert decoded.blocks == [(Cid.for_block(DAG_PB, b"\x0a\x00", version=0), b"\x0a\x00")]


def test_unknown_hash_functions_are_skipped_not_trusted() -> None:
    payload = field_bytes(1, bytes([1, 0x55, 0x13, 64])) + field_bytes(2, b"data")
    decoded = decode_message(field_bytes(3, payload))
    assert decoded.blocks == [] and decoded.skipped_blocks == 1


def test_oversized_blocks_and_messages_are_refused() -> None:
    big = b"\0" * (limits.MAX_BLOCK_BYTES + 1)
    payload = field_bytes(1, bytes([1, 0x55, 0x12, 32])) + field_bytes(2, big)
    with pytest.raises(ProtocolError):
        decode_message(field_bytes(3, payload))
    with pytest.raises(ProtocolError):
        decode_message(b"\0" * (limits.MAX_BITSWAP_MESSAGE_BYTES + 1))


def test_too_many_wants_are_refused() -> None:
    entry = field_bytes(1, field_bytes(1, HELLO.raw))
    with pytest.raises(ProtocolError):
        decode_message(field_bytes(1, entry * (limits.MAX_BITSWAP_WANTS + 1)))


@pytest.mark.parametrize(
    "wire",
    [
        field_varint(1, 5),  # wantlist as a number
        field_bytes(1, field_bytes(1, b"")),  # entry without a CID
        field_bytes(1, field_bytes(1, field_bytes(1, b"\x01\x55"))),  # truncated CID
        field_bytes(1, field_bytes(1, field_bytes(1, HELLO.raw) + field_varint(4, 9))),
        field_bytes(3, field_bytes(2, b"data")),  # block without prefix
        field_bytes(3, field_bytes(1, b"\x01\x55\x12") + field_bytes(2, b"x")),  # short prefix
        field_bytes(3, field_bytes(1, b"\x02\x55\x12\x20") + field_bytes(2, b"x")),  # version 2
        field_bytes(4, field_varint(2, 1)),  # presence without a CID
        field_bytes(4, field_bytes(1, HELLO.raw) + field_varint(2, 7)),  # unknown presence
    ],
)
def test_malformed_messages_are_refused(wire: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_message(wire)


@given(st.binary(max_size=400))
def test_arbitrary_bytes_decode_or_raise_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_message(data)
