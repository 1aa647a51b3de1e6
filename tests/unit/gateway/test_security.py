"""The gateway's guards: the token on every API call, fetch metadata, the web UI's headers,
and a gateway bound beyond loopback."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.unit.gateway.harness import AUTH, TOKEN, anonymous, client, login_cookie
from zion.gateway.security import (
    SESSION_MAX_AGE_S,
    GatewaySecurity,
    SecurityMiddleware,
    is_loopback,
    ui_csp,
)
from zion.gateway.webui import load_ui_files
from zion.node.config import GatewayConfig

__all__ = ["client"]  # the fixture, used by name

API_READS = [
    "/api/v1/node",
    "/api/v1/status",
    "/api/v1/peers",
    "/api/v1/listings",
    "/api/v1/categories",
    "/api/v1/profiles/12D3KooWx",
    "/api/v1/channels/general/messages",
    "/api/v1/events",
    "/api/v1/ipfs/stat",
    "/api/v1/ipfs/pins",
    "/api/v1/dao",
]


@pytest.mark.parametrize("path", API_READS)
async def test_every_api_read_needs_the_token(client: httpx.AsyncClient, path: str) -> None:
    async with anonymous(client) as anon:
        for headers in ({}, {"Authorization": "Bearer nope"}, login_cookie(client, "nope")):
            response = await anon.get(path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.json()["code"] == "unauthorized"


async def test_the_login_cookie_opens_the_api(client: httpx.AsyncClient) -> None:
    async with anonymous(client) as anon:
        response = await anon.get("/api/v1/node", headers=login_cookie(client))
    assert response.status_code == 200


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
async def test_api_calls_from_other_sites_are_refused(client: httpx.AsyncClient, site: str) -> None:
    """A browser marks requests from other sites (or from a sandboxed page under /ipfs/,
    whose origin is opaque) with Sec-Fetch-Site: even with the cookie, no answer."""
    async with anonymous(client) as anon:
        headers = {**login_cookie(client), "Sec-Fetch-Site": site}
        read = await anon.get("/api/v1/node", headers=headers)
        write = await anon.post(
            "/api/v1/channels/general/messages", json={"text": "x"}, headers=headers
        )
        same_origin = await anon.get(
            "/api/v1/node", headers={**headers, "Sec-Fetch-Site": "same-origin"}
        )
    assert read.status_code == write.status_code == 403
    assert read.json()["code"] == "cross-site"
    assert same_origin.status_code == 200
    assert (await client.get("/api/v1/channels/general/messages")).json()["items"] == []


async def test_the_web_ui_is_served_without_a_token_under_a_strict_policy(
    client: httpx.AsyncClient,
) -> None:
    async with anonymous(client) as anon:
        index = await anon.get("/")
        script = await anon.get("/ui/app.js")
        missing = await anon.get("/ui/nope.js")
        again = await anon.get("/ui/app.js", headers={"If-None-Match": script.headers["etag"]})
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/app.js">' in index.text
    csp = index.headers["content-security-policy"]
    files = f"http://127.0.0.1:{client.base_url.port}/ui/"
    assert csp == ui_csp(f"127.0.0.1:{client.base_url.port}")
    assert f"script-src {files};" in csp and f"style-src {files};" in csp
    assert "unsafe-inline" not in csp and "'self'" not in csp.split("img-src")[0]
    assert "frame-ancestors 'none'" in csp and index.headers["x-frame-options"] == "DENY"
    assert index.headers["x-content-type-options"] == "nosniff"
    assert script.headers["content-type"].startswith("text/javascript")
    assert missing.status_code == 404
    assert again.status_code == 304
    # Problems carry the policy too: nothing the gateway sends runs inline script.
    async with anonymous(client) as anon:
        refused = await anon.get("/api/v1/node")
    assert refused.headers["content-security-policy"] == csp
    rebound = await client.get("/", headers={"Host": "evil.example"})
    assert rebound.status_code == 421
    assert "script-src 'none'" in rebound.headers["content-security-policy"]


def test_no_ui_file_has_inline_script_or_builds_markup_from_strings() -> None:
    """The policy would block inline script anyway; markup from strings (innerHTML) is how
    a listing's text would become script, so the UI builds DOM nodes instead."""
    files = load_ui_files()
    assert "index.html" in files and "app.js" in files
    for name, file in files.items():
        text = file.body.decode()
        if name.endswith(".html"):
            assert "<script>" not in text and "<style" not in text and "style=" not in text, name
            assert "onclick=" not in text and "javascript:" not in text, name
        if name.endswith(".js"):
            for unsafe in (
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ):
                assert unsafe not in text, (name, unsafe)


async def test_content_keeps_its_own_sandbox_policy(client: httpx.AsyncClient) -> None:
    added = await client.post(
        "/api/v1/ipfs/add", files=[("file", ("page.html", b"<script>alert(1)</script>"))]
    )
    cid = added.json()["cid"]
    async with anonymous(client) as anon:
        page = await anon.get(f"/ipfs/{cid}")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == "sandbox"


async def _ok(_: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def test_a_gateway_bound_beyond_loopback_wants_the_token_everywhere() -> None:
    security = GatewaySecurity(token=TOKEN, host="0.0.0.0", port=8080)
    app = Starlette(
        routes=[Route(path, _ok) for path in ("/", "/ui/app.js", "/ipfs/x", "/login")],
        middleware=[Middleware(SecurityMiddleware, security=security)],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://0.0.0.0:8080") as http:
        for path in ("/", "/ui/app.js", "/ipfs/x"):
            assert (await http.get(path)).status_code == 401, path
            assert (await http.get(path, headers=AUTH)).status_code == 200, path
        assert (await http.get("/login")).status_code == 200


def test_listening_beyond_loopback_needs_allow_remote() -> None:
    with pytest.raises(ValueError, match="allow_remote"):
        GatewayConfig(listen="0.0.0.0:8080", allowed_origins=[], allowed_hosts=[])
    GatewayConfig(listen="0.0.0.0:8080", allowed_origins=[], allowed_hosts=[], allow_remote=True)
    GatewayConfig(listen="127.0.0.1:8080", allowed_origins=[], allowed_hosts=[])
    GatewayConfig(listen="[::1]:8080", allowed_origins=[], allowed_hosts=[])


async def test_the_login_cookie_is_a_session_not_the_token(client: httpx.AsyncClient) -> None:
    port = client.base_url.port
    assert port is not None
    login = await client.get("/login", params={"token": TOKEN})
    name, _, rest = login.headers["set-cookie"].partition("=")
    session = rest.split(";")[0]
    assert name == f"zion_session_{port}"
    assert TOKEN not in login.headers["set-cookie"]
    assert f"max-age={SESSION_MAX_AGE_S}" in login.headers["set-cookie"].lower()
    async with anonymous(client) as anon:
        assert (await anon.get("/api/v1/node", headers=login_cookie(client, session))).is_success
        # The token itself is no cookie, nor is a session altered or meant for another port.
        for value in (TOKEN, session[:-1] + "0", session.replace(".", ".0")):
            assert (
                await anon.get("/api/v1/node", headers=login_cookie(client, value))
            ).status_code == 401
        other_port = GatewaySecurity(TOKEN, "127.0.0.1", port + 1).new_session()
        response = await anon.get("/api/v1/node", headers=login_cookie(client, other_port))
        assert response.status_code == 401


def test_sessions_expire_and_are_signed_with_the_token() -> None:
    security = GatewaySecurity(TOKEN, "127.0.0.1", 8080)
    issued = 1_800_000_000
    session = security.new_session(now=issued)
    assert security.session_ok(session, now=issued + SESSION_MAX_AGE_S)
    assert not security.session_ok(session, now=issued + SESSION_MAX_AGE_S + 1)
    assert not security.session_ok(session, now=issued - 3600)  # issued in the future
    rotated = GatewaySecurity("another token", "127.0.0.1", 8080)
    assert not rotated.session_ok(session, now=issued)
    for junk in (None, "", ".", "x.y", "1" * 40 + ".ab", "²." + session.split(".")[1]):
        assert not security.session_ok(junk, now=issued)


@pytest.mark.parametrize(
    "others",
    ["other=a b", 'prefs={"a":1}', "a(b=1", "theme=dark; recent=red bike"],
)
async def test_other_apps_odd_cookies_do_not_log_the_member_out(
    client: httpx.AsyncClient, others: str
) -> None:
    """Other servers on 127.0.0.1 share the browser's cookie jar for this host."""
    session = login_cookie(client)["Cookie"]
    async with anonymous(client) as anon:
        for header in (f"{others}; {session}", f"{session}; {others}"):
            response = await anon.get("/api/v1/node", headers={"Cookie": header})
            assert response.status_code == 200, header


def test_loopback_means_loopback_addresses() -> None:
    for host in ("127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"):
        assert is_loopback(host), host
    for host in ("127.example.org", "0.0.0.0", "192.168.1.2", "::", "example.com"):
        assert not is_loopback(host), host
