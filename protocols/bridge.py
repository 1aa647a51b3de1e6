"""The bridge protocols: what a member's node asks a bridge, and what it answers.

One request per stream, as length-prefixed DAG-CBOR frames (protocols.framing): the asker
sends one request frame; the bridge answers with one or more reply frames and closes. A
streamed answer (AI text) is a run of ``chunk`` frames ended by a ``done`` frame; any answer
may instead be one ``error`` frame with a reason (REASONS lists those Zion bridges give).

- ``/zion/bridge/stripe/1.0.0``: ``pay`` (create a PaymentIntent for a listing).
- ``/zion/bridge/ai/1.0.0``: ``draft`` (listing text from notes), ``ask`` (a question about
  listings given as context), ``embed`` (vectors for texts, as packed float32).

Pure: no IO, no clocks.
"""

from __future__ import annotations

import math
import struct
from typing import Annotated, Any, Final

import msgspec

from zion.protocols import encoding, limits
from zion.protocols.errors import ProtocolError
from zion.protocols.records import CURRENCY_PATTERN, PaymentIntentId

STRIPE_PROTOCOL_ID: Final = "/zion/bridge/stripe/1.0.0"
AI_PROTOCOL_ID: Final = "/zion/bridge/ai/1.0.0"
PROTOCOL_OF_SERVICE: Final = {"stripe": STRIPE_PROTOCOL_ID, "ai": AI_PROTOCOL_ID}

#: Largest request frame: an ``ask`` with its listings as context is the biggest.
MAX_REQUEST_BYTES: Final = 128 * 1024
#: Largest reply frame: an ``embed`` reply of MAX_EMBED_TEXTS vectors is the biggest.
MAX_REPLY_BYTES: Final = 1024 * 1024
MAX_NOTES_CHARS: Final = 4000
MAX_QUESTION_CHARS: Final = 1000
#: Listings given to ``ask`` as context, and the text of each (title + description).
MAX_CONTEXT_LISTINGS: Final = 20
MAX_CONTEXT_CHARS: Final = 4000
MAX_EMBED_TEXTS: Final = 32
MAX_EMBED_TEXT_CHARS: Final = 8000
MAX_EMBED_DIMENSIONS: Final = 4096
MAX_CHUNK_CHARS: Final = 4000
#: A streamed answer's whole text, and its frames, at most (whatever a bridge sends).
MAX_ANSWER_CHARS: Final = 32_000
MAX_ANSWER_FRAMES: Final = 4096
MAX_REASON_CHARS: Final = 200
MAX_MESSAGE_CHARS: Final = 500

#: Why a bridge refused. Shared: access and load. Stripe: what is wrong with the listing.
FORBIDDEN: Final = "forbidden"
RATE_LIMITED: Final = "rate-limited"
QUOTA_EXHAUSTED: Final = "quota-exhausted"
BAD_REQUEST: Final = "bad-request"
UPSTREAM_FAILED: Final = "upstream-failed"
UNKNOWN_LISTING: Final = "unknown-listing"
BAD_SIGNATURE: Final = "bad-signature"
EXPIRED: Final = "expired"
DELETED: Final = "deleted"
PRICE_MISMATCH: Final = "price-mismatch"
UNSUPPORTED_CURRENCY: Final = "unsupported-currency"
OWN_LISTING: Final = "own-listing"
REASONS: Final = frozenset(
    {
        FORBIDDEN,
        RATE_LIMITED,
        QUOTA_EXHAUSTED,
        BAD_REQUEST,
        UPSTREAM_FAILED,
        UNKNOWN_LISTING,
        BAD_SIGNATURE,
        EXPIRED,
        DELETED,
        PRICE_MISMATCH,
        UNSUPPORTED_CURRENCY,
        OWN_LISTING,
    }
)

Currency = Annotated[str, msgspec.Meta(pattern=CURRENCY_PATTERN)]


class _Request(msgspec.Struct, forbid_unknown_fields=True, frozen=True, tag_field="op"):
    pass


class Pay(_Request, tag="pay", frozen=True):
    """Create a PaymentIntent for ``listing`` (a record ID) at the price the buyer saw. The
    buyer's node may send the listing's signed ``record`` for a bridge that lacks it."""

    listing: Annotated[str, msgspec.Meta(max_length=limits.MAX_CID_CHARS)]
    amount: Annotated[int, msgspec.Meta(ge=1, le=limits.MAX_PRICE_AMOUNT)]
    currency: Currency
    record: Annotated[bytes, msgspec.Meta(max_length=limits.MAX_RECORD_BYTES)] | None = None


class Draft(_Request, tag="draft", frozen=True):
    notes: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NOTES_CHARS)]
    title: Annotated[str, msgspec.Meta(max_length=limits.MAX_TITLE_CHARS)] = ""
    category: Annotated[str, msgspec.Meta(max_length=limits.MAX_CATEGORY_CHARS)] = ""


class ContextListing(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: Annotated[str, msgspec.Meta(max_length=limits.MAX_CID_CHARS)]
    text: Annotated[str, msgspec.Meta(max_length=MAX_CONTEXT_CHARS)]


class Ask(_Request, tag="ask", frozen=True):
    question: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_QUESTION_CHARS)]
    listings: Annotated[list[ContextListing], msgspec.Meta(max_length=MAX_CONTEXT_LISTINGS)]


class Embed(_Request, tag="embed", frozen=True):
    texts: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_EMBED_TEXT_CHARS)]],
        msgspec.Meta(min_length=1, max_length=MAX_EMBED_TEXTS),
    ]


Request = Pay | Draft | Ask | Embed
#: Which requests each protocol carries.
STRIPE_REQUESTS: Final = (Pay,)
AI_REQUESTS: Final = (Draft, Ask, Embed)


class _Reply(msgspec.Struct, forbid_unknown_fields=True, frozen=True, tag_field="t"):
    pass


class PaymentCreated(_Reply, tag="payment", frozen=True):
    payment_intent: PaymentIntentId
    client_secret: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    amount: Annotated[int, msgspec.Meta(ge=1, le=limits.MAX_PRICE_AMOUNT)]
    currency: Currency
    status: Annotated[str, msgspec.Meta(max_length=64)]
    publishable_key: Annotated[str, msgspec.Meta(max_length=limits.MAX_BRIDGE_KEY_CHARS)] = ""


class Chunk(_Reply, tag="chunk", frozen=True):
    text: Annotated[str, msgspec.Meta(max_length=MAX_CHUNK_CHARS)]


class Done(_Reply, tag="done", frozen=True):
    model: Annotated[str, msgspec.Meta(max_length=limits.MAX_BRIDGE_MODEL_CHARS)]


class Vectors(_Reply, tag="vectors", frozen=True):
    model: Annotated[str, msgspec.Meta(max_length=limits.MAX_BRIDGE_MODEL_CHARS)]
    dimensions: Annotated[int, msgspec.Meta(ge=1, le=MAX_EMBED_DIMENSIONS)]
    #: One float32 little-endian array per text, in order (DAG-CBOR has no floats we allow).
    vectors: Annotated[list[bytes], msgspec.Meta(max_length=MAX_EMBED_TEXTS)]


class Error(_Reply, tag="error", frozen=True):
    reason: Annotated[str, msgspec.Meta(max_length=MAX_REASON_CHARS)]
    message: Annotated[str, msgspec.Meta(max_length=MAX_MESSAGE_CHARS)] = ""


Reply = PaymentCreated | Chunk | Done | Vectors | Error


def encode_request(request: Request) -> bytes:
    return _encode(request, MAX_REQUEST_BYTES)


def decode_request(data: bytes, allowed: tuple[type[Request], ...]) -> Request:
    """A request this protocol carries; ProtocolError("bad-request") for anything else."""
    request: Request = _decode(data, Request, MAX_REQUEST_BYTES)
    if not isinstance(request, allowed):
        raise ProtocolError(BAD_REQUEST, f"{type(request).__name__.lower()} is not asked here")
    return request


def encode_reply(reply: Reply) -> bytes:
    return _encode(reply, MAX_REPLY_BYTES)


def decode_reply(data: bytes) -> Reply:
    reply: Reply = _decode(data, Reply, MAX_REPLY_BYTES)
    if isinstance(reply, Vectors):
        for vector in reply.vectors:
            if len(vector) != 4 * reply.dimensions:
                raise ProtocolError("malformed", "a vector's length does not match dimensions")
            if not all(math.isfinite(value) for value in unpack_vector(vector)):
                raise ProtocolError("malformed", "a vector holds NaN or infinity")
    return reply


def expected_replies(request: Request) -> tuple[type[Reply], ...]:
    """The replies that may answer ``request`` (``error`` always may)."""
    if isinstance(request, Pay):
        return (PaymentCreated, Error)
    if isinstance(request, Embed):
        return (Vectors, Error)
    return (Chunk, Done, Error)


def checked(request: Request) -> Request:
    """``request`` as the receiving side will decode it: every field's limit applies (building
    a struct in Python does not check them). ProtocolError if it would be refused."""
    allowed = STRIPE_REQUESTS if isinstance(request, Pay) else AI_REQUESTS
    return decode_request(encode_request(request), allowed)


def error(reason: str, message: str = "") -> Error:
    return Error(reason=reason[:MAX_REASON_CHARS], message=message[:MAX_MESSAGE_CHARS])


def pack_vector(values: list[float]) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def unpack_vector(data: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(data) // 4}f", data))


def split_text(text: str) -> list[str]:
    """A long answer as chunks that each fit a ``chunk`` frame."""
    return [text[i : i + MAX_CHUNK_CHARS] for i in range(0, len(text), MAX_CHUNK_CHARS)]


def _encode(value: Request | Reply, limit: int) -> bytes:
    data = encoding.encode(msgspec.to_builtins(value))
    if len(data) > limit:
        raise ProtocolError("oversized", f"{len(data)} bytes (limit {limit})")
    return data


def _decode(data: bytes, kind: Any, limit: int) -> Any:
    if len(data) > limit:
        raise ProtocolError("oversized", f"{len(data)} bytes (limit {limit})")
    value = encoding.decode(data)
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise ProtocolError(BAD_REQUEST, str(exc)) from None
