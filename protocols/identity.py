"""Ed25519 identities as libp2p peer IDs, and signature checks.

A Zion author is a libp2p peer ID: base58btc of the identity multihash of the protobuf-encoded
public key. For Ed25519 that is a fixed 6-byte prefix followed by the 32 key bytes, so the key
is read straight out of the ID (no lookup, no protobuf library). Written here rather than
taken from libp2p because zion.protocols must stay light and sans-IO (importing libp2p costs
~0.9 s).
"""

import functools
from typing import Final

import base58
import nacl.exceptions
import nacl.signing
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from zion.protocols.errors import ProtocolError

# identity multihash (0x00), length 36 (0x24); protobuf PublicKey{Type=Ed25519 (field 1 = 1),
# Data (field 2, length 32)}.
_PEER_ID_PREFIX: Final = b"\x00\x24\x08\x01\x12\x20"
_PEER_ID_BYTES: Final = len(_PEER_ID_PREFIX) + 32
#: base58 of 38 bytes is at most 52 characters.
MAX_PEER_ID_CHARS: Final = 60


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def peer_id_from_public_key(key: Ed25519PublicKey) -> str:
    encoded: bytes = base58.b58encode(_PEER_ID_PREFIX + public_key_bytes(key))
    return encoded.decode("ascii")


def peer_id_of(private_key: Ed25519PrivateKey) -> str:
    return peer_id_from_public_key(private_key.public_key())


def public_key_from_peer_id(peer_id: str) -> Ed25519PublicKey:
    """The Ed25519 key inside ``peer_id``; ProtocolError if it is not an Ed25519 peer ID."""
    if not isinstance(peer_id, str) or not 0 < len(peer_id) <= MAX_PEER_ID_CHARS:
        raise ProtocolError("bad-author", "peer ID missing or too long")
    try:
        raw = base58.b58decode(peer_id)
    except ValueError:
        raise ProtocolError("bad-author", "peer ID is not base58") from None
    if len(raw) != _PEER_ID_BYTES or not raw.startswith(_PEER_ID_PREFIX):
        raise ProtocolError("bad-author", "peer ID is not an Ed25519 identity")
    return Ed25519PublicKey.from_public_bytes(raw[len(_PEER_ID_PREFIX) :])


#: Authors whose verification keys stay parsed: sync and gossip see the same authors often.
VERIFY_KEY_CACHE: Final = 4096


@functools.lru_cache(maxsize=VERIFY_KEY_CACHE)
def verify_key_for(peer_id: str) -> nacl.signing.VerifyKey:
    """The libsodium verification key of an Ed25519 peer ID (ProtocolError if it is not one).

    Verification uses libsodium (PyNaCl) rather than OpenSSL: measured here it takes ~39 us
    against OpenSSL's ~80 us, and verification bounds how fast gossip and sync can go.
    """
    return nacl.signing.VerifyKey(public_key_bytes(public_key_from_peer_id(peer_id)))


def verify(peer_id: str, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` over ``message`` is by ``peer_id``'s key."""
    key = verify_key_for(peer_id)
    try:
        key.verify(message, signature)
    except nacl.exceptions.BadSignatureError:
        return False
    return True
