import contextlib
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zion.protocols.cid import DAG_PB, RAW, Cid
from zion.protocols.errors import ProtocolError

EMPTY_FILE_V0 = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
EMPTY_RAW_V1 = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def test_block_cids_match_kubo_and_helia() -> None:
    assert str(Cid.for_block(RAW, b"")) == EMPTY_RAW_V1
    assert str(Cid.for_block(DAG_PB, b"\x0a\x04\x08\x02\x18\x00", version=0)) == EMPTY_FILE_V0


@pytest.mark.parametrize("text", [EMPTY_FILE_V0, EMPTY_RAW_V1])
def test_parse_and_print_round_trip(text: str) -> None:
    cid = Cid.parse(text)
    assert str(cid) == text
    assert Cid.from_bytes(cid.raw) == cid


def test_other_multibases_name_the_same_cid() -> None:
    cid = Cid.parse(EMPTY_RAW_V1)
    assert Cid.parse(cid.base36()) == cid
    assert Cid.parse("f" + cid.raw.hex()) == cid
    assert Cid.parse("F" + cid.raw.hex().upper()) == cid
    assert Cid.parse(EMPTY_RAW_V1.upper()) == cid


def test_v0_upgrades_to_v1_with_the_same_hash() -> None:
    v1 = Cid.parse(EMPTY_FILE_V0).to_v1()
    assert v1.version == 1 and v1.codec == DAG_PB
    assert str(v1).startswith("bafybei")


def test_matches_checks_the_block() -> None:
    cid = Cid.for_block(RAW, b"hello")
    assert cid.matches(b"hello")
    assert not cid.matches(b"hellO")
    identity = Cid(1, RAW, b"\x00\x05hello")
    assert identity.matches(b"hello")
    unsupported = Cid(1, RAW, b"\x13\x40" + hashlib.sha512(b"x").digest())
    with pytest.raises(ProtocolError):
        unsupported.matches(b"x")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Q",
        "Qm" + "1" * 44,  # base58 of the wrong multihash
        "x" + EMPTY_RAW_V1[1:],  # unknown multibase
        "b!!!!",
        "z" + EMPTY_FILE_V0,  # CIDv0 with a multibase prefix
        "f02" + "55" + "1220" + "00" * 32,  # version 2
        "f01551220" + "00" * 31,  # digest shorter than its length
        "f015500" + "81" + "01" + "00" * 129,  # identity digest too long
        "b" + "a" * 200,  # too long
        "k-1abc",  # int() would take the sign
        "k" + "z" * 120,  # a huge base36 number
        "f 01551220" + "00" * 32,  # fromhex() would skip the space
        "b_afkrei",  # not base32
        "mAVUSIA",  # base64: valid multibase, not one we accept
    ],
)
def test_malformed_cids_are_refused(text: str) -> None:
    with pytest.raises(ProtocolError):
        Cid.parse(text)


@given(st.text(max_size=120))
def test_arbitrary_text_parses_or_raises_protocol_error(text: str) -> None:
    try:
        cid = Cid.parse(text)
    except ProtocolError:
        return
    assert Cid.from_bytes(cid.raw) == cid


@given(st.binary(max_size=100))
def test_arbitrary_bytes_parse_or_raise_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        Cid.from_bytes(data)
