"""The gateway's guards, applied to every request before any route.

- Host: only the gateway's own names (stops DNS rebinding: a hostile page whose name resolves
  to 127.0.0.1 still sends its own Host).
- Origin: browsers send it on cross-site requests; only our own origins and configured ones.
- Fetch metadata: API requests a browser marks as cross-site or same-site are refused, so
  neither another site nor a sandboxed (opaque-origin) page under /ipfs/ reaches the API.
- Token: every API request, and every mutating request anywhere, carries the API token, as
  ``Authorization: Bearer`` or the login cookie. A gateway bound beyond loopback wants it
  on every request but the login exchange.
- Size: request bodies are capped before a route reads them.
- Headers: everything but /ipfs/ content (which has its own sandbox policy) goes out with a
  Content-Security-Policy that allows no inline script and no other origin, and is not
  frameable.
"""

from __future__ import annotations

import hmac
from http.cookies import SimpleCookie
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zion.gateway.problems import problem

#: The login cookie is ``zion_token_<port>``: browsers keep cookies per host, not per port, so
#: one name for all would let the login to one local node overwrite another's (Jupyter names
#: its cookies by port for the same reason).
TOKEN_COOKIE_PREFIX: Final = "zion_token_"  # noqa: S105 (a cookie name, not a secret)
MAX_BODY_BYTES: Final = 256 * 1024
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
#: Routes whose bodies are files (content uploads), limited by the node's upload limit.
UPLOAD_PATHS: Final = frozenset({"/api/v1/ipfs/add", "/api/v1/ipfs/car", "/api/v1/listings"})
#: Paths reachable without the token even when mutating (the login exchange itself).
OPEN_PATHS: Final = frozenset({"/login"})
API_PREFIX: Final = "/api/"
#: Served with their own policy (gateway.ipfs: ``sandbox``), not the web UI's.
CONTENT_PREFIX: Final = "/ipfs/"
#: ``Sec-Fetch-Site`` values that mean "not a page of this gateway" (fetch metadata).
FOREIGN_FETCH_SITES: Final = frozenset({"cross-site", "same-site"})
#: The web UI is plain files from this gateway: no inline script or style, no other origin.
UI_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:;"
    " connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none';"
    " form-action 'self'; frame-ancestors 'none'"
)
UI_HEADERS: Final = (
    (b"content-security-policy", UI_CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
)
LOOPBACK_HOSTS: Final = frozenset({"localhost", "::1", "[::1]"})


def is_loopback(host: str) -> bool:
    return host.lower() in LOOPBACK_HOSTS or host.startswith("127.")


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
        #: Bound beyond loopback: anyone on the network can connect, so nothing is open.
        self.remote = not is_loopback(host)
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

    @property
    def cookie_name(self) -> str:
        return cookie_name(self.port)

    def token_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(
            presented.encode("utf-8", "replace"), self.token.encode("utf-8")
        )


def cookie_name(port: int) -> str:
    return f"{TOKEN_COOKIE_PREFIX}{port}"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def presented_token(scope: Scope, cookie: str) -> str | None:
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
    return cookies[cookie].value if cookie in cookies else None


class SecurityMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware) so streaming responses stay streaming."""

    def __init__(self, app: ASGIApp, security: GatewaySecurity) -> None:
        self.app = app
        self.security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not scope["path"].startswith(CONTENT_PREFIX):
            send = _with_ui_headers(send)
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
        is_api = path.startswith(API_PREFIX)
        fetch_site = _header(scope, b"sec-fetch-site")
        if is_api and fetch_site in FOREIGN_FETCH_SITES:
            await problem(403, "cross-site", "the API does not answer other sites' pages")(
                scope, receive, send
            )
            return
        needs_token = path not in OPEN_PATHS and (
            is_api or method not in SAFE_METHODS or self.security.remote
        )
        presented = presented_token(scope, self.security.cookie_name)
        if needs_token and not self.security.token_ok(presented):
            await problem(
                401,
                "unauthorized",
                "this request needs the node's API token: open the login URL that `zion run`"
                " printed (or run `zion open`), or send Authorization: Bearer <token>",
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


def _with_ui_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {key.lower() for key, _ in message.get("headers", ())}
            extra = [(key, value) for key, value in UI_HEADERS if key not in present]
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)

    return wrapped


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
