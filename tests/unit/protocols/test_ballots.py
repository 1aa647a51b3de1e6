"""Ballot records: a wallet's EIP-712 Ballot, checked by any node without the chain, and the
same signature the Governor accepts (tests/contracts cover the chain side)."""

from __future__ import annotations

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_account import Account
from eth_account.messages import encode_typed_data

from tests.conftest import NOW
from zion.protocols import encoding, identity, records
from zion.protocols.validation import Verdict

VOTER = Account.from_key("0x" + "42" * 32)
GOVERNOR = "0x" + "ab" * 20


def ballot_body(**overrides: object) -> records.BallotBody:
    fields: dict[str, object] = {
        "chain_id": 31337,
        "governor": GOVERNOR,
        "proposal_id": str(2**200 + 7),
        "support": 1,
        "voter": VOTER.address,
        "nonce": "0",
        "signature": b"\0" * 65,
    }
    fields.update(overrides)
    unsigned = records.BallotBody(**fields)  # type: ignore[arg-type]
    if "signature" in overrides:
        return unsigned
    message = encode_typed_data(full_message=records.ballot_typed_data(unsigned))
    signature = bytes(VOTER.sign_message(message).signature)
    return records.BallotBody(**{**fields, "signature": signature})  # type: ignore[arg-type]


def sign(key: Ed25519PrivateKey, body: records.BallotBody, subject: str | None = None) -> bytes:
    """A record signed by a node, built by hand: sign_record refuses to sign bad ballots, but
    a hostile peer is free to send them."""
    unsigned = {
        "v": 1,
        "kind": "ballot",
        "author": identity.peer_id_of(key),
        "subject": subject or records.ballot_subject(body),
        "seq": 1,
        "created": NOW,
        "body": msgspec.to_builtins(body),
    }
    signed = dict(unsigned, sig=key.sign(records.signing_payload(unsigned)))
    return encoding.encode(signed)


def test_a_signed_ballot_is_accepted_and_names_its_voter(key: Ed25519PrivateKey) -> None:
    body = ballot_body()
    own = records.sign_record(
        key, kind="ballot", subject=records.ballot_subject(body), seq=1, created=NOW, body=body
    )
    assert own.block == sign(key, body)
    assert records.ballot_signer(body) == VOTER.address
    validation, record = records.validate_record(sign(key, body), NOW)
    assert validation.verdict is Verdict.ACCEPT, validation.reason
    assert record is not None and isinstance(record.body, records.BallotBody)
    assert record.body.proposal_id == str(2**200 + 7)  # uint256 beyond CBOR's 64 bits


@pytest.mark.parametrize(
    "change",
    [
        {"chain_id": 1},  # signed for another chain
        {"governor": "0x" + "cd" * 20},  # for another contract
        {"support": 0},  # the vote changed after signing
        {"nonce": "1"},
    ],
)
def test_a_ballot_changed_after_signing_is_rejected(
    key: Ed25519PrivateKey, change: dict[str, object]
) -> None:
    body = ballot_body()
    forged = msgspec.structs.replace(body, **change)
    validation, record = records.validate_record(sign(key, forged), NOW)
    assert validation.verdict is Verdict.REJECT
    assert validation.reason == "bad-ballot-signature"
    assert record is None


def test_malformed_ballots_are_rejected(key: Ed25519PrivateKey) -> None:
    garbage = ballot_body(signature=b"\x01" * 65)
    assert records.validate_record(sign(key, garbage), NOW)[0].reason == "bad-ballot-signature"
    wrong_subject = sign(key, ballot_body(), subject="elsewhere")
    assert records.validate_record(wrong_subject, NOW)[0].reason == "bad-body"
    for bad in ({"proposal_id": "-1"}, {"proposal_id": "1" * 79}, {"support": 3}):
        unsigned = ballot_body(**bad, signature=b"\0" * 65)
        validation, record = records.validate_record(sign(key, unsigned), NOW)
        assert validation.verdict is Verdict.REJECT and record is None, bad
