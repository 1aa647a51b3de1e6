"""`/api/v1/conversations`: direct messages through the node (sealed end to end by it)."""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from zion.gateway.bodies import parse_json_object
from zion.gateway.services import DirectMessages, InvalidInput

DEFAULT_MESSAGES: Final = 100
MAX_MESSAGES: Final = 200


def routes(dms: DirectMessages) -> list[Route]:
    api = _DmApi(dms)
    return [
        Route("/api/v1/conversations", api.conversations, methods=["GET"]),
        Route("/api/v1/conversations", api.start, methods=["POST"]),
        Route("/api/v1/conversations/{conversation}/messages", api.messages, methods=["GET"]),
        Route("/api/v1/conversations/{conversation}/messages", api.reply, methods=["POST"]),
        Route("/api/v1/conversations/{conversation}/read", api.read, methods=["POST"]),
    ]


def _text_and_listing(body: dict[str, Any]) -> tuple[str, str | None]:
    text, listing = body.get("text"), body.get("listing")
    if not isinstance(text, str):
        raise InvalidInput("text (string) is required")
    if listing is not None and not isinstance(listing, str):
        raise InvalidInput("listing must be a CID")
    return text, listing


class _DmApi:
    def __init__(self, dms: DirectMessages) -> None:
        self.dms = dms

    async def conversations(self, _: Request) -> Response:
        return JSONResponse({"items": self.dms.conversations()})

    async def start(self, request: Request) -> Response:
        """{"to": peer ID or profile name, "text", "listing"?}"""
        body = parse_json_object(await request.body())
        to = body.get("to")
        if not isinstance(to, str):
            raise InvalidInput("to (a peer ID or a profile name) is required")
        text, listing = _text_and_listing(body)
        message = await self.dms.send(to, text, listing)
        return JSONResponse(message.to_json(), status_code=201)

    async def messages(self, request: Request) -> Response:
        raw = request.query_params.get("limit", str(DEFAULT_MESSAGES))
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_MESSAGES:
            raise InvalidInput(f"limit must be between 1 and {MAX_MESSAGES}")
        items = self.dms.messages(request.path_params["conversation"], int(raw))
        return JSONResponse({"items": [item.to_json() for item in items]})

    async def reply(self, request: Request) -> Response:
        peer = self.dms.peer_of(request.path_params["conversation"])
        text, listing = _text_and_listing(parse_json_object(await request.body()))
        message = await self.dms.send(peer, text, listing)
        return JSONResponse(message.to_json(), status_code=201)

    async def read(self, request: Request) -> Response:
        return JSONResponse({"read": self.dms.mark_read(request.path_params["conversation"])})
