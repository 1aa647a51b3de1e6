import cbor2
import pytest

from zion.protocols import gossip, limits
from zion.protocols.errors import ProtocolError


def test_batch_round_trip() -> None:
    blocks = [b"a", b"bb", b"ccc"]
    assert gossip.decode_batch(gossip.encode_batch(blocks)) == blocks


@pytest.mark.parametrize(
    "value",
    [
        [],
        {"v": 1},
        {"v": 2, "records": [b"x"]},
        {"v": 1, "records": []},
        {"v": 1, "records": ["text"]},
        {"v": 1, "records": [b"x"] * (limits.MAX_BATCH_RECORDS + 1)},
        {"v": 1, "records": [b"x"], "more": 1},
    ],
)
def test_bad_envelopes_are_rejected(value: object) -> None:
    with pytest.raises(ProtocolError):
        gossip.decode_batch(cbor2.dumps(value, canonical=True))


def test_oversized_envelope_is_rejected() -> None:
    with pytest.raises(ProtocolError) as info:
        gossip.decode_batch(b"\x00" * (limits.MAX_GOSSIP_MESSAGE_BYTES + 1))
    assert info.value.reason == "oversized"


def test_pack_batches_respects_both_limits() -> None:
    many_small = [b"x" * 10] * 600
    batches = gossip.pack_batches(many_small)
    assert [len(b) for b in batches] == [256, 256, 88]
    big = [b"y" * 60_000] * 40
    for batch in gossip.pack_batches(big):
        assert len(gossip.encode_batch(batch)) <= limits.MAX_GOSSIP_MESSAGE_BYTES
    assert sum(len(b) for b in gossip.pack_batches(big)) == 40


def test_topics_route_tombstones_with_what_they_delete() -> None:
    assert gossip.topic_for("listing") == gossip.TOPIC_LISTINGS
    assert gossip.topic_for("ballot") == gossip.TOPIC_BALLOTS
    assert len(set(gossip.TOPICS)) == len(gossip.TOPICS) == 6
