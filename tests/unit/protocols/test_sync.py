from __future__ import annotations

import hashlib
import random

import pytest

from zion.protocols import sync
from zion.protocols.cid import record_cid_bytes
from zion.protocols.errors import ProtocolError


def item(n: int) -> sync.Item:
    return (1_700_000_000_000 + n * 7 % 1000, record_cid_bytes(n.to_bytes(8, "big")))


def reconcile(mine: list[sync.Item], theirs: list[sync.Item]) -> tuple[list[sync.Item], int]:
    """Run the protocol through its wire encoding; return what the initiator lacks."""
    initiator = sync.Initiator(sync.ItemIndex(mine))
    responder = sync.Responder(sync.ItemIndex(theirs))
    request = initiator.first_request()
    while request:
        frame = sync.decode_message(sync.encode_recon(request))
        assert isinstance(frame, sync.Recon)
        ranges, listed = responder.answer(frame.ranges)
        reply = sync.decode_message(sync.encode_recon(ranges, listed))
        assert isinstance(reply, sync.Recon)
        request = initiator.next_request(reply.ranges, reply.listed)
    return initiator.missing, initiator.rounds


@pytest.mark.parametrize(
    ("mine", "theirs"),
    [
        (0, 0),
        (0, 10),
        (10, 0),
        (0, 5000),
        (5000, 5000),
    ],
)
def test_finds_exactly_what_is_missing(mine: int, theirs: int) -> None:
    a = [item(n) for n in range(mine)]
    b = [item(n) for n in range(theirs)]
    missing, _ = reconcile(a, b)
    assert sorted(missing) == sorted(set(b) - set(a))


def test_overlapping_sets_with_random_differences() -> None:
    rng = random.Random(7)
    common = [item(n) for n in range(3000)]
    only_mine = [item(n) for n in range(10_000, 10_050)]
    only_theirs = [item(n) for n in range(20_000, 20_300)]
    mine = common + only_mine
    theirs = common + only_theirs
    rng.shuffle(mine)
    missing, rounds = reconcile(mine, theirs)
    assert sorted(missing) == sorted(only_theirs)
    assert rounds <= 6


def test_identical_sets_take_one_round() -> None:
    items = [item(n) for n in range(1000)]
    missing, rounds = reconcile(items, list(items))
    assert missing == [] and rounds == 1


def test_fingerprint_is_order_free() -> None:
    items = [item(n) for n in range(50)]
    assert sync.fingerprint(items) == sync.fingerprint(list(reversed(items)))
    assert sync.fingerprint(items) != sync.fingerprint(items[1:])


def test_initiator_stops_a_walk_that_never_ends() -> None:
    initiator = sync.Initiator(sync.ItemIndex([item(1)]))
    bogus = [sync.Range(None, None, 5, hashlib.sha256(b"x").digest()[:16])]
    with pytest.raises(ProtocolError):
        for _ in range(sync.MAX_ROUNDS + 2):
            initiator.next_request(bogus, [])


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        sync.encode_get([b"short"]) if False else b"\xa1atcget",
        b"\xa2atcgetcids\x81\x41x",
        b"\xa1atdnope",
    ],
)
def test_bad_frames_are_rejected(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        sync.decode_message(frame)


def test_messages_round_trip() -> None:
    ids = [record_cid_bytes(b"a"), record_cid_bytes(b"b")]
    assert sync.decode_message(sync.encode_get(ids)) == sync.Get(ids)
    assert sync.decode_message(sync.encode_records([b"x"])) == sync.Records([b"x"])
    assert sync.decode_message(sync.encode_end()) == sync.End()


def test_responder_refuses_overlapping_ranges() -> None:
    responder = sync.Responder(sync.ItemIndex([item(n) for n in range(100)]))
    whole = sync.Range(None, None, 0, bytes(16))
    with pytest.raises(ProtocolError):
        responder.answer([whole, whole])
    inverted = [sync.Range(item(50), None, 0, bytes(16)), sync.Range(None, item(10), 0, bytes(16))]
    with pytest.raises(ProtocolError):
        responder.answer(inverted)


def test_responder_work_is_bounded_per_session() -> None:
    responder = sync.Responder(sync.ItemIndex([item(n) for n in range(1000)]))
    whole = [sync.Range(None, None, 0, bytes(16))]
    with pytest.raises(ProtocolError) as info:
        for _ in range(sync.WORK_BUDGET_FACTOR + 2):
            responder.answer(whole)
    assert info.value.reason == "sync-too-costly"
