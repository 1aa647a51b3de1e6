"""Bridges through the gateway: payments (`/api/v1/payments`), AI (`/api/v1/ai/...`),
recommendations, the list of bridges, and the Stripe webhook endpoint of a node that runs a
Stripe bridge (`/bridge/stripe/webhook`: no token; Stripe's signature is checked instead).

Drafts and answers stream as NDJSON (one JSON object per line), which a page reads with
fetch() as it arrives; the first line is pulled before answering, so a bridge that refuses
at once gives an HTTP error with the bridge's reason rather than a 200 that fails.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from zion.gateway.bodies import parse_json_object
from zion.gateway.services import Assistant, Bridges, InvalidInput, NotFound, Payments, ServiceError

NDJSON: Final = "application/x-ndjson"
DEFAULT_RECOMMENDATIONS: Final = 8
MAX_RECOMMENDATIONS: Final = 50
MAX_WEBHOOK_BYTES: Final = 256 * 1024


def routes(payments: Payments, assistant: Assistant, bridges: Bridges) -> list[Route]:
    api = _BridgeApi(payments, assistant, bridges)
    return [
        Route("/api/v1/bridges", api.bridges, methods=["GET"]),
        Route("/api/v1/payments", api.orders, methods=["GET"]),
        Route("/api/v1/payments", api.pay, methods=["POST"]),
        Route("/api/v1/payments/{payment_intent}", api.order, methods=["GET"]),
        Route("/api/v1/payments/{payment_intent}/refund", api.refund, methods=["POST"]),
        Route("/api/v1/ai/draft", api.draft, methods=["POST"]),
        Route("/api/v1/ai/ask", api.ask, methods=["POST"]),
        Route("/api/v1/ai/embeddings", api.embeddings, methods=["POST"]),
        Route("/api/v1/listings/{listing_id}/similar", api.similar, methods=["GET"]),
        Route("/api/v1/recommendations", api.recommendations, methods=["GET"]),
        Route("/bridge/stripe/webhook", api.webhook, methods=["POST"]),
    ]


def _text(body: dict[str, Any], name: str, *, required: bool) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInput(f"{name} (text) is required" if required else f"{name} must be text")
    return value


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", str(DEFAULT_RECOMMENDATIONS))
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_RECOMMENDATIONS:
        raise InvalidInput(f"limit must be between 1 and {MAX_RECOMMENDATIONS}")
    return int(raw)


async def _ndjson(items: AsyncIterator[dict[str, Any]]) -> Response:
    """Stream ``items``, having pulled the first so that an early refusal is an HTTP error."""
    try:
        first = await anext(items)
    except StopAsyncIteration:
        first = None

    async def lines() -> AsyncIterator[bytes]:
        try:
            if first is not None:
                yield _line(first)
            async for item in items:
                yield _line(item)
        except ServiceError as exc:
            yield _line({"type": "error", "reason": exc.code, "message": exc.detail})
        finally:
            await items.aclose()  # type: ignore[attr-defined]

    return StreamingResponse(lines(), media_type=NDJSON, headers={"cache-control": "no-store"})


def _line(item: dict[str, Any]) -> bytes:
    return json.dumps(item, separators=(",", ":")).encode() + b"\n"


class _BridgeApi:
    def __init__(self, payments: Payments, assistant: Assistant, bridges: Bridges) -> None:
        self.payments = payments
        self.assistant = assistant
        self.bridges_service = bridges

    async def bridges(self, _: Request) -> Response:
        return JSONResponse(
            {"items": self.bridges_service.known(), "running": self.bridges_service.running()}
        )

    async def orders(self, _: Request) -> Response:
        return JSONResponse({"items": self.payments.orders()})

    async def pay(self, request: Request) -> Response:
        """{"listing": listing ID or record ID}: the PaymentIntent's client secret, to confirm
        the payment with Stripe.js, and the order (status "awaiting-payment")."""
        body = parse_json_object(await request.body())
        listing = _text(body, "listing", required=True)
        return JSONResponse(await self.payments.pay(listing), status_code=201)

    async def order(self, request: Request) -> Response:
        return JSONResponse(self.payments.order(request.path_params["payment_intent"]))

    async def refund(self, request: Request) -> Response:
        """On the bridge that took the payment: {"amount"?: minor units (default: all)}."""
        raw = await request.body()
        body = parse_json_object(raw) if raw.strip() else {}
        amount = body.get("amount")
        if amount is not None and (not isinstance(amount, int) or isinstance(amount, bool)):
            raise InvalidInput("amount must be an integer (minor units)")
        return JSONResponse(
            await self.payments.refund(request.path_params["payment_intent"], amount)
        )

    async def draft(self, request: Request) -> Response:
        """{"notes", "title"?, "category"?}: a listing's text, streamed."""
        body = parse_json_object(await request.body())
        return await _ndjson(
            self.assistant.draft(
                _text(body, "notes", required=True),
                _text(body, "title", required=False),
                _text(body, "category", required=False),
            )
        )

    async def ask(self, request: Request) -> Response:
        """{"question"}: an answer from the listings this node has, streamed."""
        body = parse_json_object(await request.body())
        return await _ndjson(self.assistant.ask(_text(body, "question", required=True)))

    async def embeddings(self, request: Request) -> Response:
        body = parse_json_object(await request.body())
        texts = body.get("texts")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise InvalidInput("texts (a list of text) is required")
        return JSONResponse(await self.assistant.embed(texts))

    async def similar(self, request: Request) -> Response:
        listing = request.path_params["listing_id"]
        return JSONResponse(await self.assistant.similar(listing, _limit(request)))

    async def recommendations(self, request: Request) -> Response:
        return JSONResponse(await self.assistant.for_you(_limit(request)))

    async def webhook(self, request: Request) -> Response:
        webhooks = self.bridges_service.webhooks
        if webhooks is None:
            raise NotFound("this node runs no Stripe bridge")
        payload = await request.body()
        outcome = await webhooks.receive(payload, request.headers.get("stripe-signature"))
        return JSONResponse(outcome)
