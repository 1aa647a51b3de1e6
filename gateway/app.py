"""The ASGI app: REST API, live events, login. Built by the node with its services."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any, Final

import trio
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from zion import __version__
from zion.gateway import bridges, dao, dms, ipfs, openapi, webui
from zion.gateway.bodies import parse_json_object
from zion.gateway.problems import problem
from zion.gateway.security import (
    MAX_BODY_BYTES,
    SESSION_MAX_AGE_S,
    BodyTooLarge,
    GatewaySecurity,
    SecurityMiddleware,
)
from zion.gateway.services import InvalidInput, ServiceError, Services
from zion.gateway.views import listing_json, message_json, profile_json
from zion.protocols import limits
from zion.protocols.records import Record

DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 200
EVENTS_PER_READ: Final = 200
#: SSE comment sent when nothing happened for this long, so proxies keep the stream open.
SSE_KEEPALIVE_S: Final = 15.0
#: How soon an EventSource reconnects on its own.
SSE_RETRY_MS: Final = 2000
#: Event numbers are SQLite rowids; ASCII digits only (str.isdigit takes "²").
EVENT_ID: Final = re.compile(r"[0-9]{1,19}")


#: What forms need to know to refuse too-long input before the node does (the web UI reads
#: these instead of copying them).
RECORD_LIMITS: Final = {
    "title": limits.MAX_TITLE_CHARS,
    "description": limits.MAX_DESCRIPTION_CHARS,
    "category": limits.MAX_CATEGORY_CHARS,
    "tags": limits.MAX_TAGS,
    "tag": limits.MAX_TAG_CHARS,
    "images": limits.MAX_IMAGES,
    "location": limits.MAX_LOCATION_CHARS,
    "message": limits.MAX_MESSAGE_TEXT_CHARS,
    "channel": limits.MAX_CHANNEL_CHARS,
    "display_name": limits.MAX_DISPLAY_NAME_CHARS,
}


def build_app(services: Services, security: GatewaySecurity, *, ui: bool = True) -> Starlette:
    """``ui``: serve the web UI's pages and files (a seed node does not)."""
    api = _Api(services, security)
    routes = [
        Route("/login", api.login, methods=["GET"]),
        Route("/api/v1/node", api.node, methods=["GET"]),
        Route("/api/v1/status", api.status, methods=["GET"]),
        Route("/api/v1/peers", api.peers, methods=["GET"]),
        Route("/api/v1/peers", api.connect, methods=["POST"]),
        Route("/api/v1/listings", api.list_listings, methods=["GET"]),
        Route("/api/v1/listings", api.create_listing, methods=["POST"]),
        Route("/api/v1/categories", api.categories, methods=["GET"]),
        Route("/api/v1/listings/{listing_id}", api.get_listing, methods=["GET"]),
        Route("/api/v1/listings/{listing_id}", api.update_listing, methods=["PUT"]),
        Route("/api/v1/listings/{listing_id}", api.delete_listing, methods=["DELETE"]),
        Route("/api/v1/channels/{name}/messages", api.read_messages, methods=["GET"]),
        Route("/api/v1/channels/{name}/messages", api.post_message, methods=["POST"]),
        Route("/api/v1/profile", api.set_profile, methods=["PUT"]),
        Route("/api/v1/profile/dm-key", api.rotate_dm_key, methods=["POST"]),
        Route("/api/v1/profiles/{peer_id}", api.get_profile, methods=["GET"]),
        Route("/api/v1/events", api.events, methods=["GET"]),
        *ipfs.routes(services.content),
        *dao.routes(services.governance),
        *dms.routes(services.dms),
        *bridges.routes(services.payments, services.assistant, services.bridges),
        *(webui.routes() if ui else []),
        *openapi.routes(),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(SecurityMiddleware, security=security)],
        exception_handlers={
            ServiceError: _service_error,
            HTTPException: _http_error,
            BodyTooLarge: _too_large,
        },
    )


async def _service_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return problem(exc.status, exc.code, exc.detail)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    return problem(exc.status_code, code, str(exc.detail))


async def _too_large(_: Request, exc: Exception) -> Response:
    return problem(413, "too-large", "request body too large")


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    value = _optional_int_param(request, name, low, high)
    return default if value is None else value


def _optional_int_param(request: Request, name: str, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}")
    return value


async def _small_json_object(request: Request) -> dict[str, Any]:
    """A JSON body under MAX_BODY_BYTES, on a route whose multipart form may be larger."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise BodyTooLarge
    return parse_json_object(bytes(body))


async def _json_object(request: Request) -> dict[str, Any]:
    return parse_json_object(await request.body())


class _Api:
    def __init__(self, services: Services, security: GatewaySecurity) -> None:
        self.services = services
        self.security = security

    async def login(self, request: Request) -> Response:
        """The URL printed at start: trade the token for an HttpOnly cookie, then go home."""
        if not self.security.token_ok(request.query_params.get("token")):
            return problem(401, "unauthorized", "wrong or missing token")
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            self.security.cookie_name,
            self.security.new_session(),
            max_age=SESSION_MAX_AGE_S,
            httponly=True,
            samesite="strict",
            path="/",
        )
        return response

    async def node(self, _: Request) -> Response:
        node = self.services.node
        return JSONResponse(
            {
                "peer_id": node.peer_id,
                "addrs": node.addrs(),
                "version": __version__,
                "limits": RECORD_LIMITS,
            }
        )

    async def status(self, _: Request) -> Response:
        return JSONResponse(self.services.node.status())

    async def peers(self, _: Request) -> Response:
        return JSONResponse({"items": self.services.node.peers()})

    async def connect(self, request: Request) -> Response:
        body = await _json_object(request)
        addr = body.get("multiaddr")
        if not isinstance(addr, str):
            raise InvalidInput("multiaddr (string) is required")
        peer_id = await self.services.node.connect(addr)
        return JSONResponse({"peer_id": peer_id})

    async def list_listings(self, request: Request) -> Response:
        params = request.query_params
        page = self.services.market.find(
            query=params.get("q"),
            category=params.get("category"),
            author=params.get("author"),
            currency=params.get("currency"),
            min_price=_optional_int_param(request, "min_price", 0, limits.MAX_PRICE_AMOUNT),
            max_price=_optional_int_param(request, "max_price", 0, limits.MAX_PRICE_AMOUNT),
            limit=_int_param(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE),
            cursor=params.get("cursor"),
        )
        return JSONResponse({"items": [listing_json(r) for r in page.items], "next": page.next})

    async def categories(self, _: Request) -> Response:
        items = self.services.market.categories()
        return JSONResponse({"items": [{"name": n, "listings": c} for n, c in items]})

    async def create_listing(self, request: Request) -> Response:
        """JSON, or multipart: a "listing" field holding the JSON and "image" files, which
        are added to IPFS and appended to the listing's images."""
        record = await self._save_listing(request, None)
        return JSONResponse(listing_json(record), status_code=201)

    async def _save_listing(self, request: Request, listing_id: str | None) -> Record:
        market = self.services.market
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            fields = await _small_json_object(request)
            if listing_id is None:
                return await market.create(fields)
            return await market.update(listing_id, fields)
        form = await request.form(
            max_files=limits.MAX_IMAGES, max_fields=4, max_part_size=MAX_BODY_BYTES
        )
        try:
            text = form.get("listing")
            if not isinstance(text, str):
                raise InvalidInput('multipart listings need a "listing" field holding JSON')
            fields = parse_json_object(text.encode())
            files = [value for key, value in form.multi_items() if isinstance(value, UploadFile)]
            return await ipfs.save_with_images(self.services, fields, files, listing_id)
        finally:
            await form.close()

    async def get_listing(self, request: Request) -> Response:
        record = self.services.market.get(request.path_params["listing_id"])
        return JSONResponse(listing_json(record))

    async def update_listing(self, request: Request) -> Response:
        """Replaces the listing: JSON, or multipart as for creating (new images appended)."""
        record = await self._save_listing(request, request.path_params["listing_id"])
        return JSONResponse(listing_json(record))

    async def delete_listing(self, request: Request) -> Response:
        await self.services.market.delete(request.path_params["listing_id"])
        return Response(status_code=204)

    async def read_messages(self, request: Request) -> Response:
        page = self.services.channels.read(
            request.path_params["name"],
            limit=_int_param(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE),
            cursor=request.query_params.get("cursor"),
        )
        return JSONResponse({"items": [message_json(r) for r in page.items], "next": page.next})

    async def post_message(self, request: Request) -> Response:
        body = await _json_object(request)
        text, reply_to = body.get("text"), body.get("reply_to")
        if not isinstance(text, str):
            raise InvalidInput("text (string) is required")
        if reply_to is not None and not isinstance(reply_to, str):
            raise InvalidInput("reply_to must be a record ID")
        record = await self.services.channels.post(request.path_params["name"], text, reply_to)
        return JSONResponse(message_json(record), status_code=201)

    async def get_profile(self, request: Request) -> Response:
        record = self.services.profiles.get(request.path_params["peer_id"])
        return JSONResponse(profile_json(record))

    async def set_profile(self, request: Request) -> Response:
        """This node's profile; a wallet link is the wallet's EIP-191 signature, 0x-hex."""
        body = await _json_object(request)
        name = body.get("name")
        if not isinstance(name, str):
            raise InvalidInput("name (string) is required")
        avatar, wallet, raw_sig = body.get("avatar"), body.get("wallet"), body.get("wallet_sig")
        for key, value in (("avatar", avatar), ("wallet", wallet), ("wallet_sig", raw_sig)):
            if value is not None and not isinstance(value, str):
                raise InvalidInput(f"{key} must be a string")
        wallet_sig = None
        if raw_sig is not None:
            try:
                wallet_sig = bytes.fromhex(raw_sig.removeprefix("0x"))
            except ValueError:
                raise InvalidInput("wallet_sig must be hex") from None
        record = await self.services.profiles.set(name, avatar, wallet, wallet_sig)
        return JSONResponse(profile_json(record))

    async def rotate_dm_key(self, _: Request) -> Response:
        """A new direct-message key, published in a new version of this node's profile."""
        # No profile, no rotation: the 404 comes before the key changes.
        self.services.profiles.get(self.services.node.peer_id)
        self.services.dms.rotate_key()
        record = await self.services.profiles.republish()
        return JSONResponse(profile_json(record))

    async def events(self, request: Request) -> Response:
        """Server-sent events from the durable event log; resumes after Last-Event-ID."""
        raw = request.headers.get("last-event-id") or request.query_params.get("after")
        if raw is None:
            after = self.services.events.last_id()
        elif EVENT_ID.fullmatch(raw):
            after = int(raw)
        else:
            raise InvalidInput("Last-Event-ID must be an event number")
        return StreamingResponse(
            self._event_stream(after),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def _event_stream(self, after: int) -> AsyncIterator[str]:
        events = self.services.events
        # The first event tells the client the stream is open, how soon to retry, and where
        # it starts: a client that loses the stream before any other event resumes from here.
        yield f"retry: {SSE_RETRY_MS}\nid: {after}\nevent: ready\ndata: {{}}\n\n"
        while True:
            batch = events.after(after, EVENTS_PER_READ)
            for event in batch:
                data = json.dumps(event.data, separators=(",", ":"))
                yield f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n"
                after = event.id
            if batch:
                continue
            with trio.move_on_after(SSE_KEEPALIVE_S) as scope:
                await events.wait_after(after)
            if scope.cancelled_caught:
                yield ": keepalive\n\n"
