"""Direct messages: sealed end to end, sans-IO.

A message is signed by its sender's identity key (Ed25519, the key of the sender's peer ID),
padded, and sealed to the recipient's X25519 encryption key with HPKE (RFC 9180, base mode:
DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305), from `cryptography`.

HPKE's base mode does not say who sealed a message, so the sender signs the plaintext, and the
signed bytes name the recipient and the recipient's key: a recipient cannot re-seal a signed
message to someone else as if the sender had written to them.

What an eavesdropper sees is the envelope: the recipient's peer ID, a short fingerprint of the
key it is sealed to, and the sealed bytes (their length is a padding bucket). A mailbox sees
that too, and also which node handed it over: the sender's own node, so a mailbox learns who
writes to whom and when. The text, the conversation, the listing and the message's own time
and ID are inside.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Annotated, Any, Final

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from zion.protocols import encoding, identity, limits
from zion.protocols.cid import validate_content_cid
from zion.protocols.errors import ProtocolError

FORMAT_VERSION: Final = 1
#: Signatures over a message start with this, so no other Zion signature can pass for one.
SIGNATURE_DOMAIN: Final = b"zion-dm-v1:"
#: HPKE's ``info``: binds every sealed message to this protocol and version.
HPKE_INFO: Final = b"zion-dm-v1"
SUITE: Final = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
#: The smallest sealed size; sizes above it are powers of two (so a length says little).
MIN_PADDED_BYTES: Final = 512
#: Room for the longest text (limits.MAX_DM_TEXT_CHARS of 4-byte characters) and the rest.
MAX_PADDED_BYTES: Final = 32 * 1024
#: HPKE adds its encapsulated key (32 bytes) and the AEAD tag (16 bytes).
SEAL_OVERHEAD_BYTES: Final = 32 + 16
MAX_SEALED_BYTES: Final = MAX_PADDED_BYTES + SEAL_OVERHEAD_BYTES
MESSAGE_ID_BYTES: Final = 16
CONVERSATION_ID_BYTES: Final = 16
KEY_BYTES: Final = 32
FINGERPRINT_BYTES: Final = 8
#: The padding length prefix: 4 bytes, big-endian.
_LENGTH_BYTES: Final = 4
SIGNATURE_BYTES: Final = 64
#: A sender's clock may be this far ahead of ours (records allow the same).
MAX_CLOCK_AHEAD_MS: Final = limits.MAX_CLOCK_SKEW_MS
#: Times are milliseconds since 1970 that JavaScript can hold exactly.
MAX_TIME_MS: Final = 2**53
#: An encoded envelope's CBOR around its sealed bytes is well under this.
ENVELOPE_OVERHEAD_BYTES: Final = 1024


def sealed_sizes() -> frozenset[int]:
    """Every length a sealed message can have: a padding bucket plus HPKE's overhead."""
    sizes = set()
    size = MIN_PADDED_BYTES
    while size <= MAX_PADDED_BYTES:
        sizes.add(size + SEAL_OVERHEAD_BYTES)
        size *= 2
    return frozenset(sizes)


class Message(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """What the recipient reads once a message is opened and its signature checked."""

    sender: str
    recipient: str
    #: The recipient's encryption key the sender sealed to (raw X25519, 32 bytes).
    recipient_key: Annotated[bytes, msgspec.Meta(min_length=KEY_BYTES, max_length=KEY_BYTES)]
    #: Milliseconds since the Unix epoch, by the sender's clock.
    sent: Annotated[int, msgspec.Meta(ge=0, le=MAX_TIME_MS)]
    id: Annotated[bytes, msgspec.Meta(min_length=MESSAGE_ID_BYTES, max_length=MESSAGE_ID_BYTES)]
    conversation: Annotated[
        bytes, msgspec.Meta(min_length=CONVERSATION_ID_BYTES, max_length=CONVERSATION_ID_BYTES)
    ]
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_DM_TEXT_CHARS)]
    #: The listing this message is about, if any (a CID).
    listing: Annotated[str, msgspec.Meta(max_length=limits.MAX_CID_CHARS)] | None = None


class Envelope(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What travels and what mailboxes hold."""

    v: int
    recipient: str
    #: Which of the recipient's keys opens it (keys rotate; old ones still open old mail).
    key: Annotated[bytes, msgspec.Meta(min_length=FINGERPRINT_BYTES, max_length=FINGERPRINT_BYTES)]
    sealed: Annotated[bytes, msgspec.Meta(max_length=MAX_SEALED_BYTES)]


def new_message_id() -> bytes:
    return secrets.token_bytes(MESSAGE_ID_BYTES)


def raw_key(key: X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def fingerprint(key: X25519PublicKey | bytes) -> bytes:
    raw = key if isinstance(key, bytes) else raw_key(key)
    return hashlib.sha256(b"zion-dm-key:" + raw).digest()[:FINGERPRINT_BYTES]


def pad(data: bytes) -> bytes:
    """A length prefix, ``data``, then zeros up to the next size bucket."""
    needed = _LENGTH_BYTES + len(data)
    if needed > MAX_PADDED_BYTES:
        raise ProtocolError("too-large", f"a message is at most {MAX_PADDED_BYTES} bytes sealed")
    size = MIN_PADDED_BYTES
    while size < needed:
        size *= 2
    return len(data).to_bytes(_LENGTH_BYTES, "big") + data + bytes(size - needed)


def unpad(padded: bytes) -> bytes:
    length = int.from_bytes(padded[:_LENGTH_BYTES], "big")
    end = _LENGTH_BYTES + length
    if end > len(padded) or any(padded[end:]):
        raise ProtocolError("bad-padding", "the padding does not match the length")
    return padded[_LENGTH_BYTES:end]


def seal(
    sender_key: Ed25519PrivateKey,
    recipient: str,
    recipient_key: X25519PublicKey,
    *,
    text: str,
    sent: int,
    listing: str | None = None,
    message_id: bytes | None = None,
) -> tuple[Envelope, Message]:
    """Sign, pad and seal a message; ProtocolError if it breaks a rule."""
    sender = identity.peer_id_of(sender_key)
    fields: dict[str, Any] = {
        "sender": sender,
        "recipient": recipient,
        "recipient_key": raw_key(recipient_key),
        "sent": sent,
        "id": new_message_id() if message_id is None else message_id,
        "conversation": conversation_id(sender, recipient),
        "text": text,
    }
    if listing is not None:
        fields["listing"] = listing
    message = _checked(fields)
    unsigned = msgspec.to_builtins(message, builtin_types=(bytes,))
    signature = sender_key.sign(SIGNATURE_DOMAIN + encoding.encode(unsigned))
    plaintext = encoding.encode({"m": unsigned, "sig": signature})
    sealed = SUITE.encrypt(pad(plaintext), recipient_key, info=HPKE_INFO)
    envelope = Envelope(FORMAT_VERSION, recipient, fingerprint(recipient_key), sealed)
    return envelope, message


def open_envelope(envelope: Envelope, recipient: str, keys: list[X25519PrivateKey]) -> Message:
    """The message inside, for ``recipient`` holding ``keys`` (current and older ones).

    ProtocolError (reason ``not-for-us``, ``undecryptable``, ``bad-signature``, ...) for
    anything that is not a message from its signer to this recipient.
    """
    if envelope.v != FORMAT_VERSION:
        raise ProtocolError("bad-version", f"unknown message format {envelope.v}")
    if envelope.recipient != recipient:
        raise ProtocolError("not-for-us", "the message is addressed to another member")
    key = next((k for k in keys if fingerprint(k.public_key()) == envelope.key), None)
    if key is None:
        raise ProtocolError("unknown-key", "sealed to a key this node does not hold")
    try:
        padded = SUITE.decrypt(envelope.sealed, key, info=HPKE_INFO)
    except (InvalidTag, ValueError):
        raise ProtocolError("undecryptable", "the message does not open (tampered?)") from None
    outer = encoding.decode(unpad(padded))
    if not isinstance(outer, dict) or set(outer) != {"m", "sig"}:
        raise ProtocolError("malformed", "not a signed message")
    message = _checked(outer["m"])
    signature = outer["sig"]
    signed = SIGNATURE_DOMAIN + encoding.encode(outer["m"])
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        raise ProtocolError("bad-signature", "the signature is not 64 bytes")
    try:
        verified = identity.verify(message.sender, signature, signed)
    except Exception:  # libsodium's own errors: whatever it is, it is not a valid signature
        verified = False
    if not verified:
        raise ProtocolError("bad-signature", "the sender's signature does not verify")
    if message.recipient != recipient or message.recipient_key != raw_key(key.public_key()):
        raise ProtocolError("not-for-us", "signed for another recipient or key")
    # The conversation is the pair's: a sender cannot file a message in another one.
    if message.conversation != conversation_id(message.sender, message.recipient):
        raise ProtocolError("bad-conversation", "not the conversation of these two members")
    return message


def encode_envelope(envelope: Envelope) -> bytes:
    return encoding.encode(msgspec.to_builtins(envelope, builtin_types=(bytes,)))


_SEALED_SIZES: Final = sealed_sizes()


def decode_envelope(data: bytes) -> Envelope:
    """An envelope as it travels: checked to be addressed to a member, and sealed to one of
    the sizes a message can have (a mailbox holds nothing else)."""
    if len(data) > MAX_SEALED_BYTES + ENVELOPE_OVERHEAD_BYTES:
        raise ProtocolError("too-large", "an envelope is larger than any message")
    value: Any = encoding.decode(data)
    try:
        envelope = msgspec.convert(value, Envelope, builtin_types=(bytes,))
    except msgspec.ValidationError as exc:
        raise ProtocolError("malformed", str(exc)) from None
    identity.public_key_from_peer_id(envelope.recipient)
    if len(envelope.sealed) not in _SEALED_SIZES:
        raise ProtocolError("malformed", "the sealed bytes are not a message's size")
    return envelope


def _checked(fields: Any) -> Message:
    """A Message from plain fields, every constraint checked (constructing a Struct directly
    checks none)."""
    try:
        message = msgspec.convert(fields, Message, builtin_types=(bytes,))
    except msgspec.ValidationError as exc:
        raise ProtocolError("malformed", str(exc)) from None
    identity.public_key_from_peer_id(message.sender)
    identity.public_key_from_peer_id(message.recipient)
    if message.listing is not None:
        validate_content_cid(message.listing)
    return message


def generate_key() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


# --- the request/response protocol ------------------------------------------------------

PROTOCOL_ID: Final = "/zion/dm/1.0.0"
#: One request frame: an envelope and a little CBOR around it.
MAX_FRAME_BYTES: Final = MAX_SEALED_BYTES + 2 * ENVELOPE_OVERHEAD_BYTES
#: Reasons a recipient gives, short and stable (they end up in the sender's status).
MAX_REASON_CHARS: Final = 200
#: Message IDs one receipt may name.
MAX_RECEIPT_IDS: Final = 256


def encode_deliver(envelope: Envelope) -> bytes:
    return encoding.encode({"op": "deliver", "env": encode_envelope(envelope)})


def encode_receipt(ids: list[bytes], read: bool) -> bytes:
    """The recipient tells the sender it has (``read``: has read) these messages."""
    return encoding.encode({"op": "receipt", "ids": ids[:MAX_RECEIPT_IDS], "read": read})


@dataclass(frozen=True)
class Receipt:
    ids: list[bytes]
    read: bool


def decode_request(data: bytes) -> Envelope | Receipt:
    """A ``deliver`` request's envelope, or a receipt; ProtocolError for anything else."""
    value = encoding.decode(data)
    if not isinstance(value, dict):
        raise ProtocolError("malformed", "not a request")
    if value.get("op") == "receipt" and set(value) == {"op", "ids", "read"}:
        ids, read = value["ids"], value["read"]
        if (
            not isinstance(ids, list)
            or not isinstance(read, bool)
            or not 0 < len(ids) <= MAX_RECEIPT_IDS
            or not all(isinstance(i, bytes) and len(i) == MESSAGE_ID_BYTES for i in ids)
        ):
            raise ProtocolError("malformed", f"a receipt names 1 to {MAX_RECEIPT_IDS} message IDs")
        return Receipt(ids, read)
    if value.get("op") != "deliver" or set(value) != {"op", "env"}:
        raise ProtocolError("malformed", "not a deliver request")
    if not isinstance(value["env"], bytes):
        raise ProtocolError("malformed", "the envelope is not bytes")
    return decode_envelope(value["env"])


def encode_reply(reason: str | None) -> bytes:
    """``None``: accepted (stored, or had it already); else why not."""
    if reason is None:
        return encoding.encode({"ok": True})
    return encoding.encode({"ok": False, "reason": reason[:MAX_REASON_CHARS]})


def decode_reply(data: bytes) -> str | None:
    """``None`` if the recipient took the message, else its reason."""
    value = encoding.decode(data)
    if not isinstance(value, dict) or not isinstance(value.get("ok"), bool):
        raise ProtocolError("malformed", "not a deliver reply")
    if value["ok"]:
        return None
    reason = value.get("reason")
    return reason[:MAX_REASON_CHARS] if isinstance(reason, str) else "refused"


def conversation_id(a: str, b: str) -> bytes:
    """Both members derive the same ID for their conversation, without agreeing on one."""
    first, second = sorted((a, b))
    digest = hashlib.sha256(f"zion-dm-conversation:{first}:{second}".encode()).digest()
    return digest[:CONVERSATION_ID_BYTES]


# --- mailboxes -------------------------------------------------------------------------

#: Spoken by nodes that hold messages for members who are offline ([dm] mailbox = true).
MAILBOX_PROTOCOL_ID: Final = "/zion/dm-mailbox/1.0.0"
#: Envelopes handed over per fetch (the recipient fetches again until none are left).
MAX_FETCH: Final = 16
MAX_MAILBOX_FRAME_BYTES: Final = MAX_FETCH * MAX_FRAME_BYTES
HASH_BYTES: Final = 32


def encode_store(envelope: Envelope) -> bytes:
    return encoding.encode({"op": "store", "env": encode_envelope(envelope)})


def encode_fetch() -> bytes:
    return encoding.encode({"op": "fetch"})


def encode_ack(hashes: list[bytes]) -> bytes:
    return encoding.encode({"op": "ack", "hashes": hashes})


def decode_mailbox_request(data: bytes) -> tuple[str, Envelope | list[bytes] | None]:
    """("store", Envelope), ("fetch", None) or ("ack", [hash, ...]); ProtocolError else."""
    value = encoding.decode(data)
    if not isinstance(value, dict):
        raise ProtocolError("malformed", "not a mailbox request")
    op = value.get("op")
    if op == "store" and set(value) == {"op", "env"} and isinstance(value["env"], bytes):
        return "store", decode_envelope(value["env"])
    if op == "fetch" and set(value) == {"op"}:
        return "fetch", None
    if op == "ack" and set(value) == {"op", "hashes"} and isinstance(value["hashes"], list):
        hashes = value["hashes"]
        if len(hashes) > MAX_FETCH or not all(
            isinstance(h, bytes) and len(h) == HASH_BYTES for h in hashes
        ):
            raise ProtocolError("malformed", f"an ack names 1 to {MAX_FETCH} 32-byte hashes")
        return "ack", hashes
    raise ProtocolError("malformed", "not a mailbox request")


def encode_fetched(envelopes: list[bytes]) -> bytes:
    return encoding.encode({"ok": True, "envs": envelopes[:MAX_FETCH]})


def decode_fetched(data: bytes) -> list[bytes]:
    value = encoding.decode(data)
    envelopes = value.get("envs") if isinstance(value, dict) else None
    if not isinstance(envelopes, list) or len(envelopes) > MAX_FETCH:
        raise ProtocolError("malformed", "not a fetch reply")
    if not all(isinstance(e, bytes) and len(e) <= MAX_FRAME_BYTES for e in envelopes):
        raise ProtocolError("malformed", "a fetched envelope is not bytes or too large")
    return list(envelopes)


def envelope_hash(envelope: bytes) -> bytes:
    """How a mailbox and a recipient name one held envelope."""
    return hashlib.sha256(envelope).digest()
