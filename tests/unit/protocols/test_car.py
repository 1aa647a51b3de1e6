import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zion.protocols.car import encode_header, encode_section, read_car
from zion.protocols.cid import DAG_PB, RAW, Cid
from zion.protocols.errors import ProtocolError
from zion.protocols.framing import encode_varint


def car_of(blocks: list[bytes]) -> tuple[Cid, bytes]:
    cids = [Cid.for_block(RAW, block) for block in blocks]
    data = encode_header(cids[:1]) + b"".join(
        encode_section(cid, block) for cid, block in zip(cids, blocks, strict=True)
    )
    return cids[0], data


def test_round_trip() -> None:
    root, data = car_of([b"one", b"two", b""])
    roots, sections = read_car(io.BytesIO(data))
    assert roots == [root]
    assert [block for _, block in sections] == [b"one", b"two", b""]


def test_header_is_canonical_dag_cbor() -> None:
    root = Cid.for_block(DAG_PB, b"x", version=0)
    header = encode_header([root])
    # {"roots": [CID], "version": 1}: map(2), "roots" first (shorter key), tag 42.
    assert header[1:8] == b"\xa2\x65roots"
    assert b"\xd8\x2a" in header and header.endswith(b"\x67version\x01")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        encode_varint(3) + b"\xa0\xa0\xa0",
        encode_varint(1) + b"\xa0",  # {}: no roots, no version
        car_of([b"x"])[1][:-1],  # cut inside the last section
        car_of([b"x"])[1] + b"\x85",  # cut inside a length
        car_of([b"x"])[1] + encode_varint(2**30),  # oversized section
    ],
)
def test_malformed_cars_are_refused(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        _roots, sections = read_car(io.BytesIO(data))
        list(sections)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_read_or_raise_protocol_error(data: bytes) -> None:
    try:
        _, sections = read_car(io.BytesIO(data))
        list(sections)
    except ProtocolError:
        pass
