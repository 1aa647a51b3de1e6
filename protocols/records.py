"""Signed records: what members publish.

A record is a DAG-CBOR map::

    {"v": 1, "kind": "listing", "author": "<peer ID>", "subject": "<stable ID>", "seq": 3,
     "created": <ms since epoch>, "expires": <ms, optional>, "body": {...}, "sig": <64 bytes>}

``sig`` is the author's Ed25519 signature over ``SIGNATURE_DOMAIN`` followed by the encoding of
the same map without ``sig``. The record's ID is the CID of its encoding (dag-cbor, sha2-256),
so a record is also an IPFS block. For one (author, subject) the highest ``seq`` wins, and a
``tombstone`` with a higher seq deletes what came before for good.

Everything here is pure: time comes in as ``now_ms``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from zion.protocols import cid, encoding, identity, limits
from zion.protocols.errors import ProtocolError
from zion.protocols.validation import ACCEPT, Validation, ignore, reject

SIGNATURE_DOMAIN: Final = b"zion-record-v1:"
#: What a wallet signs (EIP-191 personal_sign) to link itself to a node: this + the peer ID.
WALLET_LINK_PREFIX: Final = "zion-wallet-link-v1:"
#: The subject of every author's one profile record.
PROFILE_SUBJECT: Final = "profile"

KINDS: Final = ("listing", "message", "profile", "tombstone", "ballot", "bridge", "receipt")
Kind = Literal["listing", "message", "profile", "tombstone", "ballot", "bridge", "receipt"]
#: The subject of every bridge operator's one bridge announcement.
BRIDGE_SUBJECT: Final = "bridge"
#: Services a bridge may offer; each has its request/response protocol (protocols.bridge).
BRIDGE_SERVICES: Final = ("stripe", "ai")
#: A ballot's ``support``, by value (GovernorCountingSimple): 0 against, 1 for, 2 abstain.
SUPPORT_NAMES: Final = ("against", "for", "abstain")
#: The Governor's EIP-712 domain name and version (ZionGovernor's constructor passes the name;
#: OpenZeppelin's Governor fixes the version): ballots are checked without asking the chain.
GOVERNOR_EIP712_NAME: Final = "ZionGovernor"
GOVERNOR_EIP712_VERSION: Final = "1"

_SUBJECT_RE: Final = re.compile(rf"[A-Za-z0-9_-]{{1,{limits.MAX_SUBJECT_CHARS}}}")
_TOP_LEVEL_KEYS: Final = frozenset(
    {"v", "kind", "author", "subject", "seq", "created", "expires", "body", "sig"}
)

Text = Annotated[str, msgspec.Meta(min_length=1)]


#: ISO 4217 code, or a token symbol such as ETH or USDC.
CURRENCY_PATTERN: Final = r"^[A-Z][A-Z0-9]{2,7}$"


class Price(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    amount: Annotated[int, msgspec.Meta(ge=0, le=limits.MAX_PRICE_AMOUNT)]
    currency: Annotated[str, msgspec.Meta(pattern=CURRENCY_PATTERN)]


class ListingBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_TITLE_CHARS)]
    price: Price
    category: Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_CATEGORY_CHARS)]
    description: Annotated[str, msgspec.Meta(max_length=limits.MAX_DESCRIPTION_CHARS)] = ""
    tags: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_TAG_CHARS)]],
        msgspec.Meta(max_length=limits.MAX_TAGS),
    ] = msgspec.field(default_factory=list)
    images: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=limits.MAX_CID_CHARS)]],
        msgspec.Meta(max_length=limits.MAX_IMAGES),
    ] = msgspec.field(default_factory=list)
    location: (
        Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_LOCATION_CHARS)] | None
    ) = None


class MessageBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    channel: Annotated[
        str, msgspec.Meta(pattern=rf"^[a-z0-9][a-z0-9_-]{{0,{limits.MAX_CHANNEL_CHARS - 1}}}$")
    ]
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_MESSAGE_TEXT_CHARS)]
    reply_to: str | None = None


class ProfileBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_DISPLAY_NAME_CHARS)]
    avatar: Annotated[str, msgspec.Meta(max_length=limits.MAX_CID_CHARS)] | None = None
    wallet: Annotated[str, msgspec.Meta(pattern=r"^0x[0-9a-fA-F]{40}$")] | None = None
    #: EIP-191 signature by ``wallet`` over WALLET_LINK_PREFIX + author.
    wallet_sig: Annotated[bytes, msgspec.Meta(min_length=65, max_length=65)] | None = None
    #: The X25519 key direct messages to this member are sealed to (protocols.dm); a new
    #: profile with another key rotates it.
    enc_key: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)] | None = None
    #: The Stripe bridges (peer IDs) this member takes payments through: buyers pay through
    #: one of them, and only their receipts count as this seller's sales.
    payment_bridges: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=limits.MAX_PEER_ID_CHARS)]],
        msgspec.Meta(max_length=limits.MAX_PAYMENT_BRIDGES),
    ] = msgspec.field(default_factory=list)


Uint256 = Annotated[str, msgspec.Meta(pattern=r"^(0|[1-9][0-9]{0,77})$")]
Address = Annotated[str, msgspec.Meta(pattern=r"^0x[0-9a-fA-F]{40}$")]


class BallotBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A member's vote, signed by their wallet as the Governor's EIP-712 Ballot, so that any
    node can submit it on-chain with castVoteBySig. uint256 values travel as decimal text."""

    chain_id: Annotated[int, msgspec.Meta(ge=1, le=limits.MAX_SEQ)]
    governor: Address
    proposal_id: Uint256
    #: 0 against, 1 for, 2 abstain (GovernorCountingSimple).
    support: Annotated[int, msgspec.Meta(ge=0, le=2)]
    voter: Address
    nonce: Uint256
    signature: Annotated[bytes, msgspec.Meta(min_length=65, max_length=65)]


class TombstoneBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    #: The kind of the thing deleted (it decides the gossip topic and the index to clean).
    of: Literal["listing", "message", "profile"]
    reason: Annotated[str, msgspec.Meta(max_length=limits.MAX_TOMBSTONE_REASON_CHARS)] | None = None


class BridgeOffer(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """One service a bridge offers, and on what terms."""

    service: Literal["stripe", "ai"]
    #: Who may use it: anyone, listed peers, or holders of the DAO's token.
    access: Literal["open", "allowlist", "token"]
    terms: Annotated[str, msgspec.Meta(max_length=limits.MAX_BRIDGE_TERMS_CHARS)] = ""
    #: What the operator charges per request, if anything (settled outside Zion).
    price: Price | None = None
    #: Requests per member per day (UTC); none: no daily quota.
    quota_per_day: Annotated[int, msgspec.Meta(ge=1, le=limits.MAX_SEQ)] | None = None
    #: Stripe: the currencies it takes (ISO 4217, upper case) and its publishable key.
    currencies: Annotated[
        list[Annotated[str, msgspec.Meta(pattern=CURRENCY_PATTERN)]],
        msgspec.Meta(max_length=limits.MAX_BRIDGE_CURRENCIES),
    ] = msgspec.field(default_factory=list)
    publishable_key: Annotated[str, msgspec.Meta(max_length=limits.MAX_BRIDGE_KEY_CHARS)] = ""
    #: AI: the chat and embedding models behind it.
    model: Annotated[str, msgspec.Meta(max_length=limits.MAX_BRIDGE_MODEL_CHARS)] = ""
    embedding_model: Annotated[str, msgspec.Meta(max_length=limits.MAX_BRIDGE_MODEL_CHARS)] = ""


class BridgeBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """A node's announcement that it runs bridges. It expires (bridges that stop vanish) and
    is renewed while the bridge runs; ``addrs`` let members dial a bridge they have not met."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_DISPLAY_NAME_CHARS)]
    offers: Annotated[
        list[BridgeOffer], msgspec.Meta(min_length=1, max_length=limits.MAX_BRIDGE_OFFERS)
    ]
    addrs: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=limits.MAX_MULTIADDR_CHARS)]],
        msgspec.Meta(max_length=limits.MAX_BRIDGE_ADDRS),
    ] = msgspec.field(default_factory=list)


PaymentIntentId = Annotated[str, msgspec.Meta(pattern=r"^pi_[A-Za-z0-9_]{1,61}$")]


class ReceiptBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """A Stripe bridge's word that a listing was paid for (and later, perhaps, refunded).
    The subject is the PaymentIntent's ID, so a refund is the same receipt with a higher seq."""

    listing: Annotated[str, msgspec.Meta(max_length=limits.MAX_CID_CHARS)]
    #: The listing's stable ID (its subject), which outlives the version paid for.
    listing_subject: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    seller: Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_PEER_ID_CHARS)]
    buyer: Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_PEER_ID_CHARS)]
    amount: Annotated[int, msgspec.Meta(ge=1, le=limits.MAX_PRICE_AMOUNT)]
    currency: Annotated[str, msgspec.Meta(pattern=CURRENCY_PATTERN)]
    payment_intent: PaymentIntentId
    status: Literal["paid", "refunded"]
    #: Minor units given back (status "refunded"); a partial refund is less than ``amount``.
    refunded: Annotated[int, msgspec.Meta(ge=0, le=limits.MAX_PRICE_AMOUNT)] = 0


Body = (
    ListingBody | MessageBody | ProfileBody | TombstoneBody | BallotBody | BridgeBody | ReceiptBody
)

_BODY_TYPES: Final[dict[str, type[Body]]] = {
    "listing": ListingBody,
    "message": MessageBody,
    "profile": ProfileBody,
    "tombstone": TombstoneBody,
    "ballot": BallotBody,
    "bridge": BridgeBody,
    "receipt": ReceiptBody,
}


@dataclass(frozen=True, slots=True)
class Record:
    """A decoded, structurally valid record. ``block`` is its exact encoding."""

    kind: Kind
    author: str
    subject: str
    seq: int
    created: int
    expires: int | None
    body: Body
    sig: bytes = field(repr=False)
    block: bytes = field(repr=False)
    id: str = ""
    #: The bytes ``sig`` signs: SIGNATURE_DOMAIN + the encoding without ``sig``.
    signed_payload: bytes = field(default=b"", repr=False)

    @property
    def family(self) -> str:
        """The kind this record is about: its own, or for a tombstone the kind it deletes."""
        if isinstance(self.body, TombstoneBody):
            return self.body.of
        return self.kind

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "author": self.author,
            "subject": self.subject,
            "seq": self.seq,
            "created": self.created,
            "body": msgspec.to_builtins(self.body),
        }
        if self.expires is not None:
            out["expires"] = self.expires
        return out


def signing_payload(unsigned: dict[str, Any]) -> bytes:
    return SIGNATURE_DOMAIN + encoding.encode(unsigned)


def wallet_link_message(peer_id: str) -> str:
    return WALLET_LINK_PREFIX + peer_id


def sign_record(
    key: Ed25519PrivateKey,
    *,
    kind: Kind,
    subject: str,
    seq: int,
    created: int,
    body: Body,
    expires: int | None = None,
) -> Record:
    """Build and sign a record. Raises ProtocolError if the result would not validate."""
    unsigned: dict[str, Any] = {
        "v": limits.RECORD_FORMAT_VERSION,
        "kind": kind,
        "author": identity.peer_id_of(key),
        "subject": subject,
        "seq": seq,
        "created": created,
        "body": msgspec.to_builtins(body),
    }
    if expires is not None:
        unsigned["expires"] = expires
    signed = dict(unsigned, sig=key.sign(signing_payload(unsigned)))
    record = decode_record(encoding.encode(signed))
    _check_body_semantics(record)
    return record


def decode_record(block: bytes) -> Record:
    """Decode and check the shape of a record (not its signature or its time)."""
    if len(block) > limits.MAX_RECORD_BYTES:
        raise ProtocolError("oversized", f"record is {len(block)} bytes")
    # The schema below checks every field's type, so the generic type walk is skipped.
    value = encoding.decode(block, check_types=False)
    if not isinstance(value, dict):
        raise ProtocolError("malformed", "record is not a map")
    unknown = value.keys() - _TOP_LEVEL_KEYS
    if unknown:
        raise ProtocolError("malformed", f"unknown field {sorted(unknown)[0]!r}")
    version = value.get("v")
    if type(version) is not int or version != limits.RECORD_FORMAT_VERSION:
        raise ProtocolError("unsupported-version", f"format version {version!r}")
    kind = value.get("kind")
    if kind not in _BODY_TYPES:
        raise ProtocolError("unknown-kind", f"kind {kind!r}")
    author = _field(value, "author", str)
    subject = _field(value, "subject", str)
    if not _SUBJECT_RE.fullmatch(subject):
        raise ProtocolError("malformed", "subject must be 1-64 of A-Z a-z 0-9 _ -")
    seq = _field(value, "seq", int)
    created = _field(value, "created", int)
    expires = value.get("expires")
    if expires is not None and (not isinstance(expires, int) or isinstance(expires, bool)):
        raise ProtocolError("malformed", "expires is not an integer")
    sig = _field(value, "sig", bytes)
    if not 1 <= seq <= limits.MAX_SEQ:
        raise ProtocolError("malformed", "seq out of range")
    if len(sig) != 64:
        raise ProtocolError("bad-signature", "signature is not 64 bytes")
    try:
        body = msgspec.convert(_field(value, "body", dict), _BODY_TYPES[kind])
    except msgspec.ValidationError as exc:
        raise ProtocolError("bad-body", str(exc)) from None
    return Record(
        kind=kind,
        author=author,
        subject=subject,
        seq=seq,
        created=created,
        expires=expires,
        body=body,
        sig=sig,
        block=block,
        id=cid.record_id(block),
        signed_payload=SIGNATURE_DOMAIN + _unsigned_encoding(block, value, seq),
    )


_SIG_ENTRY_HEAD: Final = b"\x63sig\x58\x40"
_SIG_ENTRY_BYTES: Final = len(_SIG_ENTRY_HEAD) + 64


def _unsigned_encoding(block: bytes, value: dict[str, Any], seq: int) -> bytes:
    """The canonical encoding of the record without ``sig``, cut out of the block.

    Canonical order puts "v", then "seq", then "sig" first (shortest keys first), so the sig
    entry sits at a known offset; removing it and decrementing the one-byte map header gives
    exactly what re-encoding would, ten times faster (this runs for every received record).
    """
    start = 1 + 3 + 4 + len(encoding.encode_unchecked(seq))
    if block[start : start + len(_SIG_ENTRY_HEAD)] == _SIG_ENTRY_HEAD and 0xA0 < block[0] < 0xB8:
        return bytes([block[0] - 1]) + block[1:start] + block[start + _SIG_ENTRY_BYTES :]
    return encoding.encode_unchecked({k: v for k, v in value.items() if k != "sig"})


def _field(value: dict[str, Any], name: str, kind: type) -> Any:
    item = value.get(name)
    if not isinstance(item, kind) or (kind is int and isinstance(item, bool)):
        raise ProtocolError("malformed", f"{name} missing or not {kind.__name__}")
    return item


def verify_signature(record: Record) -> bool:
    return identity.verify(record.author, record.sig, record.signed_payload)


def _check_body_semantics(record: Record) -> None:
    """Rules a schema cannot say: link formats, subjects tied to kinds, wallet proofs."""
    body = record.body
    if isinstance(body, ListingBody):
        for image in body.images:
            cid.validate_content_cid(image)
    elif isinstance(body, MessageBody):
        if body.reply_to is not None:
            cid.record_id_to_bytes(body.reply_to)
    elif isinstance(body, ProfileBody):
        if record.subject != PROFILE_SUBJECT:
            raise ProtocolError("bad-body", f"a profile's subject must be {PROFILE_SUBJECT!r}")
        if body.avatar is not None:
            cid.validate_content_cid(body.avatar)
        if (body.wallet is None) != (body.wallet_sig is None):
            raise ProtocolError("bad-body", "wallet and wallet_sig come together")
        if body.wallet is not None and body.wallet_sig is not None:
            _check_wallet_link(record.author, body.wallet, body.wallet_sig)
        for bridge in body.payment_bridges:
            identity.public_key_from_peer_id(bridge)
    elif isinstance(body, BridgeBody):
        if record.subject != BRIDGE_SUBJECT:
            raise ProtocolError("bad-body", f"a bridge's subject must be {BRIDGE_SUBJECT!r}")
        if record.expires is None or record.expires - record.created > limits.MAX_BRIDGE_TTL_MS:
            raise ProtocolError("bad-body", "a bridge announcement must expire within a week")
        services = [offer.service for offer in body.offers]
        if len(set(services)) != len(services):
            raise ProtocolError("bad-body", "a bridge offers each service once")
    elif isinstance(body, ReceiptBody):
        if record.subject != body.payment_intent:
            raise ProtocolError("bad-body", "a receipt's subject must be its payment_intent")
        cid.record_id_to_bytes(body.listing)
        for who in (body.seller, body.buyer):
            identity.public_key_from_peer_id(who)
        if (body.status == "refunded") != (body.refunded > 0) or body.refunded > body.amount:
            raise ProtocolError("bad-body", "refunded must be 1..amount exactly when refunded")
    elif isinstance(body, BallotBody):
        if record.subject != ballot_subject(body):
            raise ProtocolError("bad-body", "a ballot's subject must be ballot_subject(body)")
        signer = ballot_signer(body)
        if signer.lower() != body.voter.lower():
            raise ProtocolError("bad-ballot-signature", "the ballot is not signed by its voter")


#: EIP-712 types of the Governor's Ballot, EIP712Domain included (MetaMask's v4 signature
#: equals eth-account's only when it is listed).
BALLOT_TYPES: Final = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Ballot": [
        {"name": "proposalId", "type": "uint256"},
        {"name": "support", "type": "uint8"},
        {"name": "voter", "type": "address"},
        {"name": "nonce", "type": "uint256"},
    ],
}


def ballot_typed_data(body: BallotBody) -> dict[str, Any]:
    """The EIP-712 message a wallet signs for this ballot (eth_signTypedData_v4's input)."""
    return {
        "types": BALLOT_TYPES,
        "primaryType": "Ballot",
        "domain": {
            "name": GOVERNOR_EIP712_NAME,
            "version": GOVERNOR_EIP712_VERSION,
            "chainId": str(body.chain_id),
            "verifyingContract": body.governor,
        },
        "message": {
            "proposalId": body.proposal_id,
            "support": body.support,
            "voter": body.voter,
            "nonce": body.nonce,
        },
    }


def ballot_subject(body: BallotBody) -> str:
    """One subject per (chain, governor, proposal, voter): a newer ballot (a changed mind, a
    later nonce) replaces the older by seq, like any record."""
    key = f"{body.chain_id}:{body.governor.lower()}:{body.proposal_id}:{body.voter.lower()}"
    return hashlib.sha256(key.encode()).hexdigest()


def ballot_signer(body: BallotBody) -> str:
    # eth-account is imported here, not at module load: only ballots need it.
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    try:
        message = encode_typed_data(full_message=ballot_typed_data(body))
        return str(Account.recover_message(message, signature=body.signature))
    except Exception as exc:  # eth-account raises several unrelated types for bad input
        raise ProtocolError("bad-ballot-signature", f"cannot recover signer: {exc}") from None


def _check_wallet_link(peer_id: str, wallet: str, signature: bytes) -> None:
    # eth-account is imported here, not at module load: only profiles with wallets need it.
    from eth_account import Account
    from eth_account.messages import encode_defunct

    try:
        signer = Account.recover_message(
            encode_defunct(text=wallet_link_message(peer_id)), signature=signature
        )
    except Exception as exc:  # eth-account raises several unrelated types for bad input
        raise ProtocolError("bad-wallet-signature", f"cannot recover signer: {exc}") from None
    if signer.lower() != wallet.lower():
        raise ProtocolError("bad-wallet-signature", "wallet signature is not by the wallet")


def validate_record(block: bytes, now_ms: int) -> tuple[Validation, Record | None]:
    """Decide whether a record from the network may be stored and forwarded.

    Store-dependent rules (duplicates, stale seq) are the store's to apply afterwards.
    """
    try:
        record = decode_record(block)
        if record.created < limits.MIN_CREATED_MS:
            return reject("bad-time"), None
        if record.expires is not None and not (
            record.created < record.expires <= record.created + limits.MAX_EXPIRY_MS
        ):
            return reject("bad-expiry"), None
        if not verify_signature(record):
            return reject("bad-signature"), None
        _check_body_semantics(record)
    except ProtocolError as exc:
        return reject(exc.reason), None
    if record.created > now_ms + limits.MAX_CLOCK_SKEW_MS:
        # Possibly an honest clock running fast: not the sender's fault.
        return ignore("from-the-future"), record
    if record.expires is not None and record.expires <= now_ms:
        return ignore("expired"), record
    return ACCEPT, record
