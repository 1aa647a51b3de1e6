"""Helpers for end-to-end tests: real nodes (tests.integration.nodes) driven by headless Chromium.

Fixtures built on these live in tests/e2e/conftest.py; tests import the plain helpers from here.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from playwright.sync_api import Browser, CDPSession, Page, Playwright, Response

from tests.integration.nodes import NodeProcess
from zion.gateway.security import cookie_name

#: Debian's Chromium: Playwright's own browser download does not work here.
CHROMIUM: Final = "/usr/bin/chromium"
CHROMIUM_ARGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: Playwright's waits (navigation, selectors, expect_*) give up after this long.
DEFAULT_TIMEOUT_MS: Final = 15_000
SCREENSHOTS: Final = Path(__file__).parent / "screenshots"
T = TypeVar("T")


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(
        executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True
    )


def session_cookie(node: NodeProcess) -> str:
    """The name of ``node``'s login cookie (``zion_session_<gateway port>``)."""
    return cookie_name(int(node.base_url.rsplit(":", 1)[1]))


def login(page: Page, node: NodeProcess) -> Response | None:
    """Open the node's login URL in ``page``: the gateway sets its HttpOnly cookie and redirects
    to the web UI at ``/``. Returns the response for ``/``.

    Cookies ignore ports, so each node's cookie is named after its port: one browser context
    can be logged in to several nodes on 127.0.0.1.
    """
    response = page.goto(f"{node.base_url}/login?token={node.token}")
    assert page.url == f"{node.base_url}/", f"login did not land on the UI: {page.url}"
    cookies = page.context.cookies(node.base_url)
    name = session_cookie(node)
    assert any(c["name"] == name for c in cookies), f"no login cookie {name}: {cookies}"
    return response


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as tests/e2e/screenshots/<name>.png (gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_for(page: Page, condition: Callable[[], T], timeout: float, what: str) -> T:
    """``wait_until`` for state that Playwright events update: between polls the page's event
    loop runs (``page.wait_for_timeout``), which ``time.sleep`` would not let it do."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        page.wait_for_timeout(50)


class StaticSite:
    """Pages served from another origin on 127.0.0.1 (a port of its own), e.g. a hostile site.

    ``pages`` maps a path (``/evil.html``) to an HTML body; it may be changed while serving.
    ``requests`` records (path, headers with lower-case names) of every request received.
    """

    def __init__(self, pages: Mapping[str, bytes] | None = None) -> None:
        self.pages: dict[str, bytes] = dict(pages or {})
        self.requests: list[tuple[str, dict[str, str]]] = []
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                body = site.pages.get(self.path.split("?", 1)[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body or b"")))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        """``host`` may be ``localhost`` too: the same server, seen as another site."""
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def static_site(pages: Mapping[str, bytes] | None = None) -> Iterator[StaticSite]:
    site = StaticSite(pages)
    try:
        yield site
    finally:
        site.close()


@dataclass
class Exchange:
    """One request of a page as Chromium's network stack saw it (DevTools protocol)."""

    request_id: str
    method: str = ""
    url: str = ""
    #: The headers actually sent (names lower-case), cookies included.
    sent: dict[str, str] = field(default_factory=dict)
    #: Cookie name -> why Chromium did not attach it (e.g. ["SameSiteStrict"]).
    withheld_cookies: dict[str, list[str]] = field(default_factory=dict)
    #: The status the server answered, even when CORS then hid the response from the page.
    status: int | None = None
    #: Chromium's net or CORS error, if the request failed.
    error: str | None = None

    @property
    def settled(self) -> bool:
        return self.status is not None or self.error is not None

    def sent_cookie(self, name: str) -> bool:
        pairs = (part.strip().split("=", 1)[0] for part in self.sent.get("cookie", "").split(";"))
        return name in pairs


class NetworkLog:
    """Every request of one page's own frames, through a DevTools session.

    Unlike Playwright's ``response`` event this also sees what the server answered to requests
    CORS fails (the page gets a TypeError, the server still answered) and which cookies were
    sent or withheld. It does not see frames Chromium puts in another process (cross-site
    iframes): use Playwright's ``page.expect_response`` for those.
    """

    def __init__(self, page: Page) -> None:
        self.exchanges: dict[str, Exchange] = {}
        self._session: CDPSession = page.context.new_cdp_session(page)
        self._session.on("Network.requestWillBeSent", self._request)
        self._session.on("Network.requestWillBeSentExtraInfo", self._sent)
        self._session.on("Network.responseReceivedExtraInfo", self._answered)
        self._session.on("Network.loadingFailed", self._failed)
        self._session.send("Network.enable")

    def _get(self, request_id: str) -> Exchange:
        return self.exchanges.setdefault(request_id, Exchange(request_id))

    def _request(self, event: dict[str, Any]) -> None:
        exchange = self._get(event["requestId"])
        exchange.method = event["request"]["method"]
        exchange.url = event["request"]["url"]

    def _sent(self, event: dict[str, Any]) -> None:
        exchange = self._get(event["requestId"])
        exchange.sent = {k.lower(): v for k, v in event["headers"].items()}
        for entry in event.get("associatedCookies", []):
            if entry["blockedReasons"]:
                exchange.withheld_cookies[entry["cookie"]["name"]] = entry["blockedReasons"]

    def _answered(self, event: dict[str, Any]) -> None:
        self._get(event["requestId"]).status = int(event["statusCode"])

    def _failed(self, event: dict[str, Any]) -> None:
        cors = event.get("corsErrorStatus")
        detail = f" ({cors['corsError']})" if cors else ""
        self._get(event["requestId"]).error = event["errorText"] + detail

    def to(self, url_prefix: str) -> list[Exchange]:
        return [e for e in self.exchanges.values() if e.url.startswith(url_prefix)]
