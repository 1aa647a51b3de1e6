"""Arbitrary bytes into every decoder: a clean ProtocolError or a value, never a crash."""

import contextlib

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zion.protocols import cid, encoding, gossip, records, sync
from zion.protocols.errors import ProtocolError
from zion.protocols.framing import FrameDecoder

NOW = 1_800_000_000_000

cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.text() | st.binary(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@settings(max_examples=400)
@given(st.binary(max_size=2048))
def test_validate_record_never_crashes(data: bytes) -> None:
    result, _ = records.validate_record(data, NOW)
    assert result.verdict.value in {"accept", "reject", "ignore"}
    if not result.accepted:
        assert result.reason


@settings(max_examples=300)
@given(cbor_values)
def test_validate_record_on_well_formed_cbor(value: object) -> None:
    data = cbor2.dumps(value, canonical=True)
    result, _ = records.validate_record(data, NOW)
    assert not result.accepted


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(
            ["v", "kind", "author", "subject", "seq", "created", "expires", "body", "sig"]
        ),
        cbor_values,
    )
)
def test_validate_record_on_record_shaped_maps(value: dict[str, object]) -> None:
    result, _ = records.validate_record(cbor2.dumps(value, canonical=True), NOW)
    assert not result.accepted


@settings(max_examples=300)
@given(st.binary(max_size=2048))
def test_decoders_raise_only_protocol_errors(data: bytes) -> None:
    for decode in (encoding.decode, gossip.decode_batch, sync.decode_message):
        with contextlib.suppress(ProtocolError):
            decode(data)


@settings(max_examples=200)
@given(cbor_values)
def test_sync_and_gossip_decoders_on_cbor(value: object) -> None:
    data = cbor2.dumps(value, canonical=True)
    for decode in (gossip.decode_batch, sync.decode_message):
        with contextlib.suppress(ProtocolError):
            decode(data)


@settings(max_examples=200)
@given(st.text(max_size=100))
def test_id_parsers(text: str) -> None:
    for parse in (cid.record_id_to_bytes, cid.validate_content_cid):
        with contextlib.suppress(ProtocolError):
            parse(text)


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_frame_decoder(chunks: list[bytes]) -> None:
    decoder = FrameDecoder(max_frame=1000)
    try:
        for chunk in chunks:
            for frame in decoder.feed(chunk):
                assert len(frame) <= 1000
    except ProtocolError:
        pass


# CBOR semantic tags that cbor2 turns into Python objects, some of which cannot be encoded
# again (a shared reference to itself is a cycle; a MIME tag becomes an email.Message).
TAGGED = [
    "d81c81d81d00",  # shareable list holding a reference to itself
    "d81ca16176d81d00",  # the same with a map
    "c074323031332d30332d32315432303a30343a30305a",  # date-time string
    "c249010000000000000000",  # bignum
    "c48221196ab3",  # decimal fraction
    "d823626162",  # regular expression
    "d9010283010203",  # set
    "d90100826361626364d81900",  # string references
    "f7",  # undefined
    "f0",  # simple value
    "f93c00",  # half-precision float
    "d825500123456789abcdef0123456789abcdef",  # UUID
    "d82476436f6e74656e742d547970653a20746578742f706c61696e0a0a",  # MIME message
]


@pytest.mark.parametrize("hex_data", TAGGED)
def test_semantic_tags_are_clean_rejects(hex_data: str) -> None:
    data = bytes.fromhex(hex_data)
    result, _ = records.validate_record(data, NOW)
    assert not result.accepted
    for decode in (encoding.decode, gossip.decode_batch, sync.decode_message):
        with pytest.raises(ProtocolError):
            decode(data)
