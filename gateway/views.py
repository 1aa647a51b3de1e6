"""How records look in the API: flat JSON objects a browser can use directly."""

from typing import Any

import msgspec

from zion.protocols.records import BallotBody, ListingBody, MessageBody, ProfileBody, Record


def listing_json(record: Record) -> dict[str, Any]:
    """A listing's ``id`` is its stable subject; ``cid`` names this exact version."""
    assert isinstance(record.body, ListingBody)
    out: dict[str, Any] = {
        "id": record.subject,
        "cid": record.id,
        "author": record.author,
        "seq": record.seq,
        "created": record.created,
        "expires": record.expires,
    }
    out.update(msgspec.to_builtins(record.body))
    out.setdefault("description", "")
    out.setdefault("tags", [])
    out.setdefault("images", [])
    out.setdefault("location", None)
    return out


def message_json(record: Record) -> dict[str, Any]:
    assert isinstance(record.body, MessageBody)
    return {
        "id": record.id,
        "author": record.author,
        "channel": record.body.channel,
        "text": record.body.text,
        "reply_to": record.body.reply_to,
        "created": record.created,
    }


def profile_json(record: Record) -> dict[str, Any]:
    assert isinstance(record.body, ProfileBody)
    body = record.body
    return {
        "peer_id": record.author,
        "name": body.name,
        "avatar": body.avatar,
        "wallet": body.wallet,
        "wallet_sig": None if body.wallet_sig is None else "0x" + body.wallet_sig.hex(),
        "enc_key": None if body.enc_key is None else body.enc_key.hex(),
        "payment_bridges": list(body.payment_bridges),
        "seq": record.seq,
        "created": record.created,
    }


def ballot_json(record: Record) -> dict[str, Any]:
    assert isinstance(record.body, BallotBody)
    body = record.body
    return {
        "id": record.id,
        "author": record.author,
        "chain_id": body.chain_id,
        "governor": body.governor,
        "proposal_id": body.proposal_id,
        "support": body.support,
        "voter": body.voter,
        "nonce": body.nonce,
        "signature": "0x" + body.signature.hex(),
        "created": record.created,
    }
