"""The gateway's guards, applied to every request before any route.

- Host: only the gateway's own names (stops DNS rebinding: a hostile page whose name resolves
  to 127.0.0.1 still sends its own Host).
- Origin: browsers send it on cross-site requests; only our own origins and configured ones.
- Fetch metadata: API requests a browser marks as cross-site or same-site are refused, so
  neither another site nor a sandboxed (opaque-origin) page under /ipfs/ reaches the API.
- Token: every API request, and every mutating request anywhere, carries the API token as
  ``Authorization: Bearer``, or a browser session cookie from the login exchange. A gateway
  bound beyond loopback wants one of them on every request but the login exchange.
- Size: request bodies are capped before a route reads them.
- Headers: everything but /ipfs/ content (which has its own sandbox policy) goes out with a
  Content-Security-Policy that allows no inline script and no other origin, and is not
  frameable.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from typing import Final

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zion.gateway.problems import problem

#: The login cookie is ``zion_session_<port>``: browsers keep cookies per host, not per port,
#: so one name for all would let the login to one local node overwrite another's (Jupyter
#: names its cookies by port for the same reason).
SESSION_COOKIE_PREFIX: Final = "zion_session_"
#: A browser session lasts this long; then the login URL is needed again.
SESSION_MAX_AGE_S: Final = 30 * 24 * 3600
#: Sessions issued up to this far in the future are accepted (clock steps).
SESSION_CLOCK_SKEW_S: Final = 300
MAX_BODY_BYTES: Final = 256 * 1024
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
#: Routes whose bodies are files (content uploads), limited by the node's upload limit.
UPLOAD_PATHS: Final = frozenset({"/api/v1/ipfs/add", "/api/v1/ipfs/car", "/api/v1/listings"})
#: ... and every path under these (a listing replaced with new images).
UPLOAD_PREFIXES: Final = ("/api/v1/listings/",)
#: Paths reachable without the token even when mutating (the login exchange itself).
OPEN_PATHS: Final = frozenset({"/login"})
#: Paths whose requests prove themselves with a signature of their own, checked by the route
#: (Stripe's webhooks carry Stripe-Signature), so they need no token.
SIGNED_PATHS: Final = frozenset({"/bridge/stripe/webhook"})
API_PREFIX: Final = "/api/"
#: Served with their own policy (gateway.ipfs: ``sandbox``), not the web UI's.
CONTENT_PREFIX: Final = "/ipfs/"
#: ``Sec-Fetch-Site`` values that mean "not a page of this gateway" (fetch metadata).
FOREIGN_FETCH_SITES: Final = frozenset({"cross-site", "same-site"})
#: Where the web UI's own files live: the only place scripts and styles may come from.
UI_FILES_PREFIX: Final = "/ui/"
#: The web UI is plain files from this gateway: no inline script or style, no other origin.
#: Scripts and styles are tied to the UI's folder (not 'self'), so even a script under
#: /ipfs/ could not be loaded into a UI page.
UI_CSP: Final = (
    "default-src 'none'; script-src {files}; style-src {files}; img-src 'self' data: blob:;"
    " connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none';"
    " form-action 'self'; frame-ancestors 'none'"
)
UI_HEADERS: Final = (
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
)


def ui_csp(host: str | None) -> str:
    """The policy for a response to ``host`` (already checked; None: not this gateway)."""
    return UI_CSP.format(files=f"http://{host}{UI_FILES_PREFIX}" if host else "'none'")


#: WebSocket close code for "policy violation" (RFC 6455).
WS_POLICY_VIOLATION: Final = 1008
LOOPBACK_HOSTS: Final = frozenset({"localhost", "::1", "[::1]"})


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
        self.upload_limit = upload_limit
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

    def body_limit(self, path: str) -> int:
        if path in UPLOAD_PATHS or path.startswith(UPLOAD_PREFIXES):
            return self.upload_limit
        return MAX_BODY_BYTES

    @property
    def cookie_name(self) -> str:
        return cookie_name(self.port)

    def token_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(
            presented.encode("utf-8", "replace"), self.token.encode("utf-8")
        )

    def new_session(self, now: float | None = None) -> str:
        """A browser session: when it was issued, signed with the token. The cookie is not
        the token itself because browsers send it to every server on 127.0.0.1 (cookies
        ignore ports): what leaks there expires, and rotating the token revokes it."""
        return self._session(int(time.time() if now is None else now))

    def session_ok(self, value: str | None, now: float | None = None) -> bool:
        if value is None:
            return False
        issued, _, _ = value.partition(".")
        if not (issued.isascii() and issued.isdigit() and len(issued) <= 12):
            return False
        age = int(time.time() if now is None else now) - int(issued)
        if not -SESSION_CLOCK_SKEW_S <= age <= SESSION_MAX_AGE_S:
            return False
        expected = self._session(int(issued))
        return hmac.compare_digest(value.encode("utf-8", "replace"), expected.encode())

    def _session(self, issued: int) -> str:
        message = f"zion-session:{self.port}:{issued}".encode()
        mac = hmac.new(self.token.encode(), message, hashlib.sha256).hexdigest()
        return f"{issued}.{mac}"

    def authorised(self, scope: Scope) -> bool:
        """A bearer token, if one is presented (a wrong one is not rescued by a cookie), or
        else a valid session cookie."""
        auth = _header(scope, b"authorization")
        if auth is not None:
            return auth[:7].lower() == "bearer " and self.token_ok(auth[7:].strip())
        cookies = cookie_parser(_header(scope, b"cookie") or "")
        return self.session_ok(cookies.get(self.cookie_name))


def cookie_name(port: int) -> str:
    return f"{SESSION_COOKIE_PREFIX}{port}"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class SecurityMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware) so streaming responses stay streaming."""

    def __init__(self, app: ASGIApp, security: GatewaySecurity) -> None:
        self.app = app
        self.security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # No route speaks WebSocket; refuse rather than let one through unchecked.
            await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = (_header(scope, b"host") or "").lower()
        if not scope["path"].startswith(CONTENT_PREFIX):
            ours = host if host in self.security.allowed_hosts else None
            send = _with_ui_headers(send, ui_csp(ours))
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
        needs_token = (
            path not in OPEN_PATHS
            and path not in SIGNED_PATHS
            and (is_api or method not in SAFE_METHODS or self.security.remote)
        )
        if needs_token and not self.security.authorised(scope):
            await problem(
                401,
                "unauthorized",
                "this request needs the node's API token: open the login URL that `zion run`"
                " printed (or run `zion open`), or send Authorization: Bearer <token>",
            )(scope, receive, send)
            return
        limit = self.security.body_limit(path)
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await problem(413, "too-large", f"request bodies here are limited to {limit} bytes")(
                scope, receive, send
            )
            return
        await self.app(scope, _capped(receive, limit), send)


def _with_ui_headers(send: Send, csp: str) -> Send:
    headers = ((b"content-security-policy", csp.encode()), *UI_HEADERS)

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {key.lower() for key, _ in message.get("headers", ())}
            extra = [(key, value) for key, value in headers if key not in present]
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
