"""The AI bridge's handler: members' ``draft``, ``ask`` and ``embed`` requests, answered by an
OpenAI-compatible server through the operator's key (node/ai.py). Text streams back in
``chunk`` frames as the model writes it."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

from zion.node.ai import AiBackend, AiUpstreamBusy, AiUpstreamError
from zion.protocols import bridge

log = logging.getLogger(__name__)


class AiBridge:
    def __init__(self, backend: AiBackend, model: str, embedding_model: str) -> None:
        self._backend = backend
        self._model = model
        self._embedding_model = embedding_model

    def offer_details(self) -> dict[str, Any]:
        return {"model": self._model, "embedding_model": self._embedding_model}

    async def handle(self, asker: str, request: bridge.Request) -> AsyncGenerator[bridge.Reply]:
        try:
            if isinstance(request, bridge.Embed):
                yield await self._embed(request)
                return
            if isinstance(request, bridge.Draft):
                text = self._backend.draft(request.notes, request.title, request.category)
            elif isinstance(request, bridge.Ask):
                text = self._backend.answer(request.question, request.listings)
            else:
                yield bridge.error(bridge.BAD_REQUEST, "not an AI request")
                return
            async for delta in text:
                for piece in bridge.split_text(delta):
                    yield bridge.Chunk(text=piece)
            yield bridge.Done(model=self._model)
        except AiUpstreamBusy as exc:
            log.warning("ai bridge: the AI service is busy or out of quota: %s", exc)
            yield bridge.error(bridge.UPSTREAM_FAILED, f"the AI service is busy: {exc}")
        except AiUpstreamError as exc:
            log.warning("ai bridge: the AI service failed: %s", exc)
            yield bridge.error(bridge.UPSTREAM_FAILED, f"the AI service failed: {exc}")

    async def _embed(self, request: bridge.Embed) -> bridge.Reply:
        vectors = await self._backend.embed(request.texts)
        if len(vectors) != len(request.texts) or not vectors:
            return bridge.error(bridge.UPSTREAM_FAILED, "the AI service gave the wrong vectors")
        dimensions = len(vectors[0])
        if not 0 < dimensions <= bridge.MAX_EMBED_DIMENSIONS or any(
            len(vector) != dimensions for vector in vectors
        ):
            return bridge.error(bridge.UPSTREAM_FAILED, "the AI service gave uneven vectors")
        return bridge.Vectors(
            model=self._embedding_model,
            dimensions=dimensions,
            vectors=[bridge.pack_vector(vector) for vector in vectors],
        )
