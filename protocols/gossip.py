"""Gossip topics and the batch envelope that carries records over GossipSub.

One gossip message carries up to MAX_BATCH_RECORDS records as a DAG-CBOR map
``{"v": 1, "records": [<record block>, ...]}``. Each record stays the exact block it was
signed as, so any DAG-CBOR decoder can take the envelope apart and check each record alone.
"""

import hashlib
from typing import Final

from zion.protocols import encoding, limits
from zion.protocols.errors import ProtocolError

ENVELOPE_VERSION: Final = 1

TOPIC_LISTINGS: Final = "/zion/listings/1.0.0"
TOPIC_MESSAGES: Final = "/zion/messages/1.0.0"
TOPIC_PROFILES: Final = "/zion/profiles/1.0.0"
TOPIC_BALLOTS: Final = "/zion/ballots/1.0.0"
TOPIC_BRIDGES: Final = "/zion/bridges/1.0.0"
TOPIC_RECEIPTS: Final = "/zion/receipts/1.0.0"
TOPICS: Final = (
    TOPIC_LISTINGS,
    TOPIC_MESSAGES,
    TOPIC_PROFILES,
    TOPIC_BALLOTS,
    TOPIC_BRIDGES,
    TOPIC_RECEIPTS,
)

_TOPIC_OF_FAMILY: Final = {
    "listing": TOPIC_LISTINGS,
    "message": TOPIC_MESSAGES,
    "profile": TOPIC_PROFILES,
    "ballot": TOPIC_BALLOTS,
    "bridge": TOPIC_BRIDGES,
    "receipt": TOPIC_RECEIPTS,
}


def topic_for(family: str) -> str:
    """The topic of records about ``family`` (a tombstone travels with what it deletes)."""
    return _TOPIC_OF_FAMILY[family]


def encode_batch(blocks: list[bytes]) -> bytes:
    if not 0 < len(blocks) <= limits.MAX_BATCH_RECORDS:
        raise ProtocolError("bad-batch", f"{len(blocks)} records in one batch")
    data = encoding.encode({"v": ENVELOPE_VERSION, "records": blocks})
    if len(data) > limits.MAX_GOSSIP_MESSAGE_BYTES:
        raise ProtocolError("oversized", f"batch is {len(data)} bytes")
    return data


def decode_batch(data: bytes) -> list[bytes]:
    """The record blocks in a gossip message; ProtocolError if the envelope is bad."""
    if len(data) > limits.MAX_GOSSIP_MESSAGE_BYTES:
        raise ProtocolError("oversized", f"gossip message is {len(data)} bytes")
    value = encoding.decode(data)
    if not isinstance(value, dict) or value.keys() != {"v", "records"}:
        raise ProtocolError("malformed", "not a batch envelope")
    if value["v"] != ENVELOPE_VERSION:
        raise ProtocolError("unsupported-version", f"envelope version {value['v']!r}")
    blocks = value["records"]
    if not isinstance(blocks, list) or not 0 < len(blocks) <= limits.MAX_BATCH_RECORDS:
        raise ProtocolError("bad-batch", "records must be a list of 1-256 blocks")
    if not all(isinstance(block, bytes) for block in blocks):
        raise ProtocolError("malformed", "a record is not a byte string")
    return blocks


def message_id(data: bytes) -> bytes:
    """Content-addressed gossip message IDs: records carry their own signatures, so the
    envelope needs no publisher signature and a re-published batch is the same message."""
    return hashlib.sha256(data).digest()


def pack_batches(blocks: list[bytes]) -> list[list[bytes]]:
    """Split blocks into batches that each fit in one gossip message."""
    batches: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    # 16 bytes of envelope, up to 5 bytes of header per block: stay well inside the limit.
    budget = limits.MAX_GOSSIP_MESSAGE_BYTES - 64
    for block in blocks:
        cost = len(block) + 5
        if current and (len(current) == limits.MAX_BATCH_RECORDS or size + cost > budget):
            batches.append(current)
            current, size = [], 0
        current.append(block)
        size += cost
    if current:
        batches.append(current)
    return batches
