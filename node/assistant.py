"""AI for members, through an AI bridge, and recommendations that need none.

Drafts and answers stream as dicts with a ``type``: first ``source`` (which bridge answers,
so the UI can say where the text came from), then ``chunk``s, then ``done``; a bridge that
fails after the first chunk ends the stream with ``error``. Questions are answered from
listings this node has: the ones that share the most words with the question go to the bridge
as context, and are named in a ``context`` item.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any, Final

from zion.gateway.services import InvalidInput, NotFound, ServiceError
from zion.gateway.views import listing_json
from zion.node.bridge_client import BridgeClient
from zion.node.bridges import BridgeError, as_service_error
from zion.node.recommend import Recommendations, Recommender
from zion.protocols import bridge
from zion.protocols.errors import ProtocolError
from zion.protocols.records import ListingBody, Record
from zion.storage.records import RecordStore

log = logging.getLogger(__name__)

#: Words of a question searched for context, and listings found per word.
MAX_QUESTION_WORDS: Final = 12
CONTEXT_PER_WORD: Final = 50
MAX_RECOMMENDATIONS: Final = 50
#: Room kept in an ``ask`` request for its question and encoding, and the encoding's cost per
#: context listing (map keys, lengths).
CONTEXT_MARGIN_BYTES: Final = 2048
CONTEXT_ITEM_OVERHEAD_BYTES: Final = 32
_WORD: Final = re.compile(r"\w{3,}")
#: Words too common to say what a question is about.
_STOPWORDS: Final = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "what",
        "which",
        "who",
        "where",
        "when",
        "how",
        "are",
        "is",
        "any",
        "there",
        "this",
        "that",
        "you",
        "have",
        "has",
        "from",
        "under",
        "over",
        "about",
        "can",
        "does",
        "want",
        "looking",
        "need",
        "some",
    ]
)


class AssistantService:
    def __init__(
        self,
        records: RecordStore,
        client: BridgeClient,
        peer_id: str,
        *,
        embeddings: bool,
    ) -> None:
        self._records = records
        self._client = client
        self._peer_id = peer_id
        embed = self._embed_vectors if embeddings else None
        self._recommender = Recommender(records, peer_id, embed)

    # --- streamed text ---------------------------------------------------------------------

    def draft(self, notes: str, title: str, category: str) -> AsyncIterator[dict[str, Any]]:
        try:
            request = bridge.checked(bridge.Draft(notes=notes, title=title, category=category))
        except ProtocolError as exc:
            raise InvalidInput(f"cannot draft from that: {exc.detail}") from None
        assert isinstance(request, bridge.Draft)
        return self._stream(request, [])

    def ask(self, question: str) -> AsyncIterator[dict[str, Any]]:
        context = self._context(question)
        try:
            request = bridge.checked(bridge.Ask(question=question, listings=context))
        except ProtocolError as exc:
            raise InvalidInput(f"cannot ask that: {exc.detail}") from None
        assert isinstance(request, bridge.Ask)
        return self._stream(request, [item.id for item in context])

    async def _stream(
        self, request: bridge.Draft | bridge.Ask, context: list[str]
    ) -> AsyncIterator[dict[str, Any]]:
        """The first item is pulled by the gateway before it answers 200, so a bridge that
        refuses at once becomes an HTTP error; later failures end the stream with ``error``."""
        started = False
        try:
            async with aclosing(self._client.call("ai", request)) as replies:
                async for peer, reply in replies:
                    if not started:
                        started = True
                        yield {"type": "source", **self._source(peer)}
                        if isinstance(request, bridge.Ask):
                            yield {"type": "context", "listings": context}
                    if isinstance(reply, bridge.Chunk):
                        yield {"type": "chunk", "text": reply.text}
                    elif isinstance(reply, bridge.Done):
                        yield {"type": "done", "model": reply.model}
        except BridgeError as exc:
            if not started:
                raise as_service_error(exc) from None
            yield {"type": "error", "reason": exc.reason, "message": exc.message}

    def _source(self, peer: str) -> dict[str, Any]:
        if peer == self._peer_id:
            return {"bridge": peer, "name": "this node's AI bridge"}
        known = next((b for b in self._client.directory.all() if b.peer_id == peer), None)
        return {"bridge": peer, "name": known.name if known else "AI bridge"}

    def _context(self, question: str) -> list[bridge.ContextListing]:
        """The listings sharing the most words with the question (ties: newest first), as
        many as fit in one request (text in some scripts takes 3 bytes a character)."""
        words = [w for w in _WORD.findall(question.lower()) if w not in _STOPWORDS]
        scores: dict[str, tuple[int, Record]] = {}
        for word in words[:MAX_QUESTION_WORDS]:
            for record in self._records.listings(query=word, limit=CONTEXT_PER_WORD).items:
                hits, _ = scores.get(record.id, (0, record))
                scores[record.id] = (hits + 1, record)
        ranked = sorted(scores.values(), key=lambda item: (-item[0], -item[1].created))
        budget = bridge.MAX_REQUEST_BYTES - CONTEXT_MARGIN_BYTES - len(question.encode())
        context: list[bridge.ContextListing] = []
        for _, record in ranked[: bridge.MAX_CONTEXT_LISTINGS]:
            item = bridge.ContextListing(id=record.id, text=_listing_text(record))
            cost = len(item.id) + len(item.text.encode()) + CONTEXT_ITEM_OVERHEAD_BYTES
            if cost > budget:
                break
            budget -= cost
            context.append(item)
        return context

    # --- vectors ---------------------------------------------------------------------------

    async def embed(self, texts: list[str]) -> dict[str, Any]:
        try:
            request = bridge.checked(bridge.Embed(texts=texts))
        except ProtocolError as exc:
            raise InvalidInput(f"cannot embed that: {exc.detail}") from None
        try:
            async with aclosing(self._client.call("ai", request)) as replies:
                async for peer, reply in replies:
                    if isinstance(reply, bridge.Vectors):
                        return {
                            "model": reply.model,
                            "dimensions": reply.dimensions,
                            "vectors": [bridge.unpack_vector(v) for v in reply.vectors],
                            **self._source(peer),
                        }
        except BridgeError as exc:
            raise as_service_error(exc) from None
        raise ServiceError("the bridge answered without vectors")

    async def _embed_vectors(self, texts: list[str]) -> list[list[float]]:
        """Embeddings for the recommender, in batches the protocol allows; raises when no
        bridge helps (the recommender then ranks locally). Only a bridge this node's config
        names (or its own) is asked: recommendations run in the background, on every listing
        page, and should neither spend quota at nor tell browsing habits to a bridge the
        member did not choose."""
        if not self._client.available("ai", configured_only=True):
            raise BridgeError("no-bridge", "no AI bridge")
        vectors: list[list[float]] = []
        for start in range(0, len(texts), bridge.MAX_EMBED_TEXTS):
            batch = [
                t[: bridge.MAX_EMBED_TEXT_CHARS] or "-"
                for t in texts[start : start + bridge.MAX_EMBED_TEXTS]
            ]
            calling = self._client.call("ai", bridge.Embed(texts=batch), configured_only=True)
            async with aclosing(calling) as replies:
                async for _, reply in replies:
                    if isinstance(reply, bridge.Vectors):
                        vectors += [bridge.unpack_vector(v) for v in reply.vectors]
        if len(vectors) != len(texts):
            raise BridgeError(bridge.UPSTREAM_FAILED, "missing vectors")
        return vectors

    # --- recommendations -------------------------------------------------------------------

    async def similar(self, listing: str, limit: int) -> dict[str, Any]:
        record = self._records.get(listing) if listing.startswith("b") else None
        if record is None:
            record = self._records.listing(listing, prefer_author=self._peer_id)
        if record is None or not isinstance(record.body, ListingBody):
            raise NotFound(f"no listing {listing[:80]!r}")
        return _recommendations(await self._recommender.similar(record.id, limit))

    async def for_you(self, limit: int) -> dict[str, Any]:
        return _recommendations(await self._recommender.for_you(limit))


def _recommendations(found: Recommendations) -> dict[str, Any]:
    return {"items": [listing_json(record) for record in found.items], "source": found.source}


def _listing_text(record: Record) -> str:
    body = record.body
    assert isinstance(body, ListingBody)
    price = f"{body.price.amount} {body.price.currency} (minor units)"
    text = f"{body.title}\nPrice: {price}\nCategory: {body.category}\n{body.description}"
    return text[: bridge.MAX_CONTEXT_CHARS]
