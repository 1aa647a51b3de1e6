"""The gateway's guards, applied to every request before any route.

- Host: only the gateway's own names (stops DNS rebinding: a hostile page whose name resolves
  to 127.0.0.1 still sends its own Host).
- Origin: browsers send it on cross-site requests; only our own origins and configured ones.
- Token: mutating requests (anything but GET/HEAD/OPTIONS) carry the API token, as
  ``Authorization: Bearer`` or the login cookie.
- Size: request bodies are capped before a route reads them.
"""

from __future__ import annotations

import hmac
from http.cookies import SimpleCookie
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zion.gateway.problems import problem

TOKEN_COOKIE: Final = "zion_token"  # noqa: S105 (a cookie name, not a secret)
MAX_BODY_BYTES: Final = 256 * 1024
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
#: Routes whose bodies are files (content uploads), limited by the node's upload limit.
UPLOAD_PATHS: Final = frozenset({"/api/v1/ipfs/add", "/api/v1/ipfs/car", "/api/v1/listings"})
#: Paths reachable without the token even when mutating (the login exchange itself).
OPEN_PATHS: Final = frozenset({"/login"})


class GatewaySecurity:
    """Who may talk to the gateway. ``port`` may be set after binding (port 0 in tests)."""

    def __init__(
        self,
        token: str,
        host: str,
        port: int,
        extra_hosts: tuple[str, ...] = (),
        extra_origins: tuple[str, ...] = (),
        upload_limit: int = MAX_BODY_BYTES,
    ) -> None:
        self.token = token
        #: Routes that take files get this limit instead of MAX_BODY_BYTES.
        self.body_limits = {path: upload_limit for path in UPLOAD_PATHS}
        self.host = host
        self._extra_hosts = extra_hosts
        self._extra_origins = extra_origins
        self.set_port(port)

    def set_port(self, port: int) -> None:
        self.port = port
        names = {self.host, "127.0.0.1", "localhost", "[::1]"}
        hosts = {f"{name}:{port}" for name in names} | set(self._extra_hosts)
        origins = {f"http://{host}" for host in hosts} | set(self._extra_origins)
        self.allowed_hosts = frozenset(h.lower() for h in hosts)
        self.allowed_origins = frozenset(o.lower() for o in origins)

    def token_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(
            presented.encode("utf-8", "replace"), self.token.encode("utf-8")
        )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def presented_token(scope: Scope) -> str | None:
    auth = _header(scope, b"authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    cookie_header = _header(scope, b"cookie")
    if not cookie_header:
        return None
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(cookie_header)
    except Exception:  # a malformed Cookie header is the client's problem, not ours
        return None
    return cookies[TOKEN_COOKIE].value if TOKEN_COOKIE in cookies else None


class SecurityMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware) so streaming responses stay streaming."""

    def __init__(self, app: ASGIApp, security: GatewaySecurity) -> None:
        self.app = app
        self.security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = (_header(scope, b"host") or "").lower()
        if host not in self.security.allowed_hosts:
            await problem(421, "bad-host", f"host {host[:100]!r} is not this gateway")(
                scope, receive, send
            )
            return
        origin = _header(scope, b"origin")
        if origin is not None and origin.lower() not in self.security.allowed_origins:
            await problem(403, "bad-origin", f"origin {origin[:100]!r} is not allowed")(
                scope, receive, send
            )
            return
        method = scope["method"]
        path = scope["path"]
        needs_token = method not in SAFE_METHODS and path not in OPEN_PATHS
        if needs_token and not self.security.token_ok(presented_token(scope)):
            await problem(
                401,
                "unauthorized",
                "this request needs the node's API token (Authorization: Bearer <token>)",
            )(scope, receive, send)
            return
        limit = self.security.body_limits.get(path, MAX_BODY_BYTES)
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await problem(413, "too-large", f"request bodies here are limited to {limit} bytes")(
                scope, receive, send
            )
            return
        await self.app(scope, _capped(receive, limit), send)


def _capped(receive: Receive, limit: int) -> Receive:
    """Stop reading a chunked body that grows past ``limit``."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge
        return message

    return wrapped


class BodyTooLarge(Exception):
    pass
