from __future__ import annotations

from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_account import Account
from eth_account.messages import encode_defunct

from tests.conftest import DAY, NOW, make_listing
from zion.protocols import encoding, identity, limits, records
from zion.protocols.errors import ProtocolError
from zion.protocols.validation import Verdict


def resign(key: Ed25519PrivateKey, value: dict[str, Any]) -> bytes:
    """Re-sign an edited record so only the edit, not the signature, is wrong."""
    unsigned = {k: v for k, v in value.items() if k != "sig"}
    payload = records.SIGNATURE_DOMAIN + cbor2.dumps(unsigned, canonical=True)
    return cbor2.dumps(dict(unsigned, sig=key.sign(payload)), canonical=True)


def edited(key: Ed25519PrivateKey, **changes: Any) -> bytes:
    value = encoding.decode(make_listing(key).block)
    for name, change in changes.items():
        if change is KeyError:
            del value[name]
        else:
            value[name] = change
    return resign(key, value)


def verdict(block: bytes) -> tuple[Verdict, str]:
    result, _ = records.validate_record(block, NOW)
    return result.verdict, result.reason


def test_round_trip(key: Ed25519PrivateKey) -> None:
    record = make_listing(key)
    decoded = records.decode_record(record.block)
    assert decoded == record
    assert decoded.author == identity.peer_id_of(key)
    assert decoded.id.startswith("bafyrei")
    assert records.validate_record(record.block, NOW)[0].accepted


def test_encoding_is_canonical_and_stable(key: Ed25519PrivateKey) -> None:
    record = make_listing(key)
    assert cbor2.dumps(cbor2.loads(record.block), canonical=True) == record.block
    # Same input, same bytes, same ID: Ed25519 signatures are deterministic.
    assert make_listing(key).id == record.id
    # Keys sorted length-first, then bytewise: DAG-CBOR's map order.
    keys = list(cbor2.loads(record.block).keys())
    assert keys == sorted(keys, key=lambda k: (len(k), k))


def test_peer_id_is_the_libp2p_form(key: Ed25519PrivateKey) -> None:
    peer_id = identity.peer_id_of(key)
    assert peer_id.startswith("12D3KooW")
    public = identity.public_key_from_peer_id(peer_id)
    assert identity.public_key_bytes(public) == identity.public_key_bytes(key.public_key())


def test_bad_signature_is_rejected(key: Ed25519PrivateKey) -> None:
    value = encoding.decode(make_listing(key).block)
    value["sig"] = bytes(64)
    assert verdict(cbor2.dumps(value, canonical=True)) == (Verdict.REJECT, "bad-signature")


def test_signature_by_another_key_is_rejected(key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.from_private_bytes(bytes(32))
    value = encoding.decode(make_listing(key).block)
    unsigned = {k: v for k, v in value.items() if k != "sig"}
    value["sig"] = other.sign(records.signing_payload(unsigned))
    assert verdict(cbor2.dumps(value, canonical=True)) == (Verdict.REJECT, "bad-signature")


def test_signature_without_domain_is_rejected(key: Ed25519PrivateKey) -> None:
    value = encoding.decode(make_listing(key).block)
    unsigned = {k: v for k, v in value.items() if k != "sig"}
    value["sig"] = key.sign(encoding.encode(unsigned))
    assert verdict(cbor2.dumps(value, canonical=True))[1] == "bad-signature"


def test_oversized_is_rejected(key: Ed25519PrivateKey) -> None:
    assert verdict(b"\x00" * (limits.MAX_RECORD_BYTES + 1)) == (Verdict.REJECT, "oversized")


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        (b"", "malformed"),
        (b"\xff\xff", "malformed"),
        (cbor2.dumps([1, 2]), "malformed"),
        (cbor2.dumps({"v": 1}), "unknown-kind"),
    ],
)
def test_malformed_is_rejected(block: bytes, reason: str) -> None:
    assert verdict(block) == (Verdict.REJECT, reason)


def test_non_canonical_is_rejected(key: Ed25519PrivateKey) -> None:
    block = make_listing(key).block
    value = cbor2.loads(block)
    # Same content, keys in insertion (not canonical) order.
    shuffled = dict(reversed(list(value.items())))
    assert verdict(cbor2.dumps(shuffled)) == (Verdict.REJECT, "non-canonical")
    assert verdict(block + b"\x00") == (Verdict.REJECT, "non-canonical")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"v": 2}, "unsupported-version"),
        ({"kind": "spell"}, "unknown-kind"),
        ({"extra": 1}, "malformed"),
        ({"seq": 0}, "malformed"),
        ({"seq": True}, "malformed"),
        ({"subject": "has space"}, "malformed"),
        ({"subject": "x" * (limits.MAX_SUBJECT_CHARS + 1)}, "malformed"),
        ({"created": "yesterday"}, "malformed"),
        ({"author": "QmNotAnEd25519Key"}, "bad-author"),
        ({"author": KeyError}, "malformed"),
        ({"created": 1000}, "bad-time"),
        ({"expires": NOW - 1}, "bad-expiry"),
        ({"expires": NOW + limits.MAX_EXPIRY_MS + 1}, "bad-expiry"),
        ({"body": {"title": "x"}}, "bad-body"),
        (
            {"body": {"title": "", "price": {"amount": 1, "currency": "EUR"}, "category": "c"}},
            "bad-body",
        ),
    ],
)
def test_each_reject_reason(key: Ed25519PrivateKey, changes: dict[str, Any], reason: str) -> None:
    assert verdict(edited(key, **changes)) == (Verdict.REJECT, reason)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "t" * (limits.MAX_TITLE_CHARS + 1)),
        ("description", "d" * (limits.MAX_DESCRIPTION_CHARS + 1)),
        ("tags", ["t"] * (limits.MAX_TAGS + 1)),
        ("tags", ["t" * (limits.MAX_TAG_CHARS + 1)]),
        ("price", {"amount": -1, "currency": "EUR"}),
        ("price", {"amount": limits.MAX_PRICE_AMOUNT + 1, "currency": "EUR"}),
        ("price", {"amount": 1, "currency": "eur"}),
        ("images", ["not-a-cid"]),
        ("location", ""),
        ("colour", "red"),
    ],
)
def test_listing_body_limits(key: Ed25519PrivateKey, field: str, value: Any) -> None:
    body = encoding.decode(make_listing(key).block)["body"]
    body[field] = value
    assert verdict(edited(key, body=body)) == (
        Verdict.REJECT,
        "bad-body" if field != "images" else "bad-cid",
    )


def test_expired_and_future_records_are_ignored_not_rejected(key: Ed25519PrivateKey) -> None:
    record = make_listing(key)
    later = record.expires + 1  # type: ignore[operator]
    assert records.validate_record(record.block, later)[0].verdict is Verdict.IGNORE
    early = NOW - limits.MAX_CLOCK_SKEW_MS - 1
    result = records.validate_record(record.block, early)[0]
    assert (result.verdict, result.reason) == (Verdict.IGNORE, "from-the-future")


def test_float_values_are_rejected(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ProtocolError):
        encoding.encode({"price": 1.5})
    body = encoding.decode(make_listing(key).block)["body"]
    body["price"] = {"amount": 1.5, "currency": "EUR"}
    assert verdict(edited(key, body=body))[0] is Verdict.REJECT


def test_message_and_tombstone_records(key: Ed25519PrivateKey) -> None:
    parent = make_listing(key)
    message = records.sign_record(
        key,
        kind="message",
        subject="m1",
        seq=1,
        created=NOW,
        body=records.MessageBody(channel="general", text="hi", reply_to=parent.id),
    )
    assert records.validate_record(message.block, NOW)[0].accepted
    assert message.family == "message"
    tombstone = records.sign_record(
        key,
        kind="tombstone",
        subject="bike1",
        seq=2,
        created=NOW,
        body=records.TombstoneBody(of="listing"),
    )
    assert tombstone.family == "listing"
    with pytest.raises(ProtocolError):
        records.sign_record(
            key,
            kind="message",
            subject="m2",
            seq=1,
            created=NOW,
            body=records.MessageBody(channel="Bad Channel!", text="hi"),
        )
    with pytest.raises(ProtocolError):
        records.sign_record(
            key,
            kind="message",
            subject="m2",
            seq=1,
            created=NOW,
            body=records.MessageBody(channel="general", text="hi", reply_to="nope"),
        )


def test_profile_with_wallet_link(key: Ed25519PrivateKey) -> None:
    wallet = Account.from_key(b"\x01" * 32)
    peer_id = identity.peer_id_of(key)
    signature = wallet.sign_message(encode_defunct(text=records.wallet_link_message(peer_id)))
    body = records.ProfileBody(
        name="Ada", wallet=wallet.address, wallet_sig=bytes(signature.signature)
    )
    profile = records.sign_record(
        key, kind="profile", subject=records.PROFILE_SUBJECT, seq=1, created=NOW, body=body
    )
    assert records.validate_record(profile.block, NOW)[0].accepted

    other_wallet = Account.from_key(b"\x02" * 32)
    forged = records.ProfileBody(
        name="Ada", wallet=other_wallet.address, wallet_sig=bytes(signature.signature)
    )
    with pytest.raises(ProtocolError) as info:
        records.sign_record(key, kind="profile", subject="profile", seq=1, created=NOW, body=forged)
    assert info.value.reason == "bad-wallet-signature"
    with pytest.raises(ProtocolError):
        records.sign_record(
            key,
            kind="profile",
            subject="other",
            seq=1,
            created=NOW,
            body=records.ProfileBody(name="A"),
        )


def test_expiry_window(key: Ed25519PrivateKey) -> None:
    record = make_listing(key)
    assert record.expires == NOW + 30 * DAY


@pytest.mark.parametrize("seq", [1, 23, 24, 255, 256, 70_000, 2**40])
def test_signed_payload_equals_reencoding(key: Ed25519PrivateKey, seq: int) -> None:
    record = make_listing(key, seq=seq)
    value = cbor2.loads(record.block)
    del value["sig"]
    assert record.signed_payload == records.SIGNATURE_DOMAIN + cbor2.dumps(value, canonical=True)


def test_profile_carries_a_direct_message_key(key: Ed25519PrivateKey) -> None:
    enc_key = bytes(range(32))
    body = records.ProfileBody(name="Ada", enc_key=enc_key)
    profile = records.sign_record(
        key, kind="profile", subject=records.PROFILE_SUBJECT, seq=1, created=NOW, body=body
    )
    checked = records.validate_record(profile.block, NOW)
    assert checked[0].accepted
    decoded = records.decode_record(profile.block).body
    assert isinstance(decoded, records.ProfileBody) and decoded.enc_key == enc_key
    for wrong in (b"", bytes(31), bytes(33)):
        with pytest.raises(ProtocolError):
            records.sign_record(
                key,
                kind="profile",
                subject=records.PROFILE_SUBJECT,
                seq=1,
                created=NOW,
                body=records.ProfileBody(name="Ada", enc_key=wrong),
            )
