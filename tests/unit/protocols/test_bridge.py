"""Bridge announcements, payment receipts, and the bridge request/response protocol."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import DAY, NOW, make_listing
from zion.protocols import bridge, encoding, identity, limits, records
from zion.protocols.errors import ProtocolError
from zion.protocols.validation import Verdict

BUYER = identity.peer_id_of(Ed25519PrivateKey.from_private_bytes(bytes([7] * 32)))


def announcement(key: Ed25519PrivateKey, **changes: Any) -> records.Record:
    fields: dict[str, Any] = {
        "subject": records.BRIDGE_SUBJECT,
        "expires": NOW + DAY,
        "offers": [records.BridgeOffer(service="stripe", access="open", currencies=["EUR"])],
    }
    fields.update(changes)
    return records.sign_record(
        key,
        kind="bridge",
        subject=fields["subject"],
        seq=1,
        created=NOW,
        expires=fields["expires"],
        body=records.BridgeBody(name="Payments", offers=fields["offers"]),
    )


def receipt(key: Ed25519PrivateKey, **changes: Any) -> records.Record:
    listing = make_listing(key)
    body: dict[str, Any] = {
        "listing": listing.id,
        "listing_subject": listing.subject,
        "seller": listing.author,
        "buyer": BUYER,
        "amount": 12000,
        "currency": "EUR",
        "payment_intent": "pi_123abc",
        "status": "paid",
    }
    subject = changes.pop("subject", "pi_123abc")
    body.update(changes)
    return records.sign_record(
        key,
        kind="receipt",
        subject=subject,
        seq=1,
        created=NOW,
        body=records.ReceiptBody(**body),
    )


def test_a_bridge_announcement_round_trips_and_validates(key: Ed25519PrivateKey) -> None:
    record = announcement(key)
    verdict, decoded = records.validate_record(record.block, NOW)
    assert verdict.verdict is Verdict.ACCEPT and decoded is not None
    assert isinstance(decoded.body, records.BridgeBody)
    assert decoded.body.offers[0].currencies == ["EUR"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"subject": "other"}, "subject"),
        ({"expires": None}, "expire"),
        ({"expires": NOW + limits.MAX_BRIDGE_TTL_MS + 1}, "expire"),
        (
            {
                "offers": [
                    records.BridgeOffer(service="ai", access="open"),
                    records.BridgeOffer(service="ai", access="token"),
                ]
            },
            "once",
        ),
    ],
)
def test_bad_announcements_are_refused(
    key: Ed25519PrivateKey, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ProtocolError, match=message):
        announcement(key, **changes)


def test_a_receipt_validates_and_a_refund_is_its_next_version(key: Ed25519PrivateKey) -> None:
    paid = receipt(key)
    assert records.validate_record(paid.block, NOW)[0].verdict is Verdict.ACCEPT
    refunded = receipt(key, status="refunded", refunded=12000)
    assert refunded.subject == paid.subject


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"subject": "pi_other"}, "subject"),
        ({"status": "refunded"}, "refunded"),
        ({"refunded": 5}, "refunded"),
        ({"status": "refunded", "refunded": 12001}, "refunded"),
        ({"listing": "not-a-cid"}, "CID"),
        ({"buyer": "not-a-peer"}, "peer ID"),
        ({"listing_subject": "no spaces"}, "listing_subject"),
    ],
)
def test_bad_receipts_are_refused(
    key: Ed25519PrivateKey, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ProtocolError, match=message):
        receipt(key, **changes)


def test_requests_round_trip_and_are_held_to_their_protocol() -> None:
    pay = bridge.Pay(listing="bafy", amount=100, currency="EUR", record=b"x")
    data = bridge.encode_request(pay)
    assert bridge.decode_request(data, bridge.STRIPE_REQUESTS) == pay
    with pytest.raises(ProtocolError) as refused:
        bridge.decode_request(data, bridge.AI_REQUESTS)
    assert refused.value.reason == bridge.BAD_REQUEST
    ask = bridge.Ask(question="red bike?", listings=[bridge.ContextListing(id="b1", text="Bike")])
    assert bridge.decode_request(bridge.encode_request(ask), bridge.AI_REQUESTS) == ask


@pytest.mark.parametrize(
    "value",
    [
        {"op": "pay", "listing": "b", "amount": 0, "currency": "EUR"},
        {"op": "pay", "listing": "b", "amount": 1, "currency": "euro"},
        {"op": "draft", "notes": ""},
        {"op": "embed", "texts": []},
        {"op": "embed", "texts": ["x"] * (bridge.MAX_EMBED_TEXTS + 1)},
        {"op": "ask", "question": "q", "listings": [], "extra": 1},
        {"op": "launch", "target": "moon"},
        ["not", "a", "map"],
    ],
)
def test_malformed_requests_are_bad_requests(value: Any) -> None:
    with pytest.raises(ProtocolError) as refused:
        bridge.decode_request(encoding.encode(value), bridge.AI_REQUESTS + bridge.STRIPE_REQUESTS)
    assert refused.value.reason == bridge.BAD_REQUEST


def test_oversized_frames_are_refused_before_decoding() -> None:
    with pytest.raises(ProtocolError) as refused:
        bridge.decode_request(b"\x00" * (bridge.MAX_REQUEST_BYTES + 1), bridge.AI_REQUESTS)
    assert refused.value.reason == "oversized"
    with pytest.raises(ProtocolError):
        bridge.encode_request(bridge.Draft(notes="x" * (bridge.MAX_REQUEST_BYTES + 10)))


def test_a_profile_names_payment_bridges_by_peer_id(key: Ed25519PrivateKey) -> None:
    bridge_peer = BUYER
    body = records.ProfileBody(name="Sam", payment_bridges=[bridge_peer])
    profile = records.sign_record(
        key, kind="profile", subject=records.PROFILE_SUBJECT, seq=1, created=NOW, body=body
    )
    assert records.validate_record(profile.block, NOW)[0].verdict is Verdict.ACCEPT
    with pytest.raises(ProtocolError):
        records.sign_record(
            key,
            kind="profile",
            subject=records.PROFILE_SUBJECT,
            seq=1,
            created=NOW,
            body=records.ProfileBody(name="Sam", payment_bridges=["not-a-peer"]),
        )


def test_requests_are_checked_as_the_receiver_will() -> None:
    with pytest.raises(ProtocolError):
        bridge.checked(bridge.Draft(notes="x" * (bridge.MAX_NOTES_CHARS + 1)))
    assert bridge.checked(bridge.Draft(notes="lamp")) == bridge.Draft(notes="lamp")
    assert bridge.expected_replies(bridge.Embed(texts=["x"])) == (bridge.Vectors, bridge.Error)


def test_vectors_travel_as_float32_and_must_match_their_dimensions() -> None:
    reply = bridge.Vectors(model="m", dimensions=3, vectors=[bridge.pack_vector([0.5, -1.0, 2.0])])
    decoded = bridge.decode_reply(bridge.encode_reply(reply))
    assert isinstance(decoded, bridge.Vectors)
    assert bridge.unpack_vector(decoded.vectors[0]) == [0.5, -1.0, 2.0]
    lying = bridge.Vectors(model="m", dimensions=4, vectors=[bridge.pack_vector([0.5, 1.0])])
    with pytest.raises(ProtocolError):
        bridge.decode_reply(bridge.encode_reply(lying))
    nan = bridge.Vectors(model="m", dimensions=1, vectors=[bridge.pack_vector([float("nan")])])
    with pytest.raises(ProtocolError, match="NaN"):
        bridge.decode_reply(bridge.encode_reply(nan))


def test_long_answers_are_split_into_frames_that_fit() -> None:
    text = "x" * (bridge.MAX_CHUNK_CHARS * 2 + 5)
    pieces = bridge.split_text(text)
    assert "".join(pieces) == text
    assert all(
        len(bridge.encode_reply(bridge.Chunk(text=p))) < bridge.MAX_REPLY_BYTES for p in pieces
    )
    assert bridge.error("x" * 1000, "y" * 1000).reason == "x" * bridge.MAX_REASON_CHARS
