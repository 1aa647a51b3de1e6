"""The OpenAPI document: valid, complete (every served route), served with its reference page."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from starlette.routing import BaseRoute, Mount, Route

from tests.unit.gateway.harness import AUTH, TOKEN, client
from zion import __version__
from zion.gateway import openapi
from zion.gateway.app import build_app
from zion.gateway.security import SESSION_COOKIE_PREFIX, GatewaySecurity
from zion.gateway.services import Services

__all__ = ["client"]  # the fixture, used by name

DOCUMENT = "/api/v1/openapi.json"
DOCS = "/api/v1/docs"
PAGE = "/ui/api-docs.html"
#: The web UI's own files, which are pages rather than API.
UI_ROUTE = re.compile(r"^/$|^/ui/")
MUTATING = frozenset({"post", "put", "patch", "delete"})
LISTING = {"title": "Oak table", "price": {"amount": 25000, "currency": "EUR"}, "category": "x"}


def served_routes() -> dict[str, set[str]]:
    """Path -> methods of every route the gateway serves, but the web UI's files.

    The routes are declared when the app is built, and nothing here calls a service.
    """
    unused = Services(**{field.name: None for field in dataclasses.fields(Services)})
    app = build_app(unused, GatewaySecurity(TOKEN, "127.0.0.1", 0))
    routes: dict[str, set[str]] = {}
    for path, methods in _walk(app.routes):
        if not UI_ROUTE.match(path):
            routes.setdefault(path, set()).update(method.lower() for method in methods)
    return routes


def _walk(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    for route in routes:
        if isinstance(route, Mount):
            yield from _walk(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            yield prefix + route.path, set(route.methods or ())


def published_as(route_path: str) -> re.Pattern[str]:
    """The OpenAPI paths a route may be documented under: a ``{name}`` is one templated
    segment, a ``{name:path}`` (which spans segments) one or more."""
    pattern = ""
    for part in re.split(r"({\w+(?::\w+)?})", route_path):
        if part.endswith(":path}"):
            pattern += r"\{\w+\}(/\{\w+\})*"
        elif part.startswith("{"):
            pattern += r"\{\w+\}"
        else:
            pattern += re.escape(part)
    return re.compile(pattern)


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


async def fetch_document(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get(DOCUMENT, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    document: dict[str, Any] = response.json()
    return document


def validator(document: dict[str, Any], schema: str) -> OAS31Validator:
    """Checks JSON against one of the document's component schemas."""
    return OAS31Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    )


async def test_the_document_is_valid_openapi_3_1(client: httpx.AsyncClient) -> None:
    document = await fetch_document(client)
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] == "Zion node gateway"
    assert document["info"]["version"] == __version__
    assert {"Problem", "Listing", "Message", "Profile", "Ballot", "Page"} <= set(
        document["components"]["schemas"]
    )


async def test_every_served_route_is_documented(client: httpx.AsyncClient) -> None:
    """Fails when a route is added without an entry in gateway/openapi_table.py's table."""
    paths = (await fetch_document(client))["paths"]
    missing, extra = [], []
    for route_path, methods in served_routes().items():
        pattern = published_as(route_path)
        published = [path for path in paths if pattern.fullmatch(path)]
        # Starlette answers HEAD wherever it answers GET: documenting it is optional there.
        optional = {"head"} if "get" in methods else set()
        for method in sorted(methods - optional):
            missing += [f"{method.upper()} {route_path}"] if not published else []
            missing += [
                f"{method.upper()} {path}" for path in published if method not in paths[path]
            ]
        for path in published:
            extra += [f"{m.upper()} {path}" for m in paths[path] if m not in methods]
    assert not missing, f"served but not in gateway/openapi_table.py: {missing}"
    assert not extra, f"documented but not served: {extra}"


async def test_nothing_is_documented_that_is_not_served(client: httpx.AsyncClient) -> None:
    routes = served_routes()
    document = await fetch_document(client)
    for path, method, _ in operations(document):
        assert any(
            published_as(route).fullmatch(path) and method in methods
            for route, methods in routes.items()
        ), f"{method.upper()} {path} is documented but not served"
    stale = [
        f"{method} {path}"
        for method, path in openapi.operations()
        if method.lower() not in routes.get(path, set())
    ]
    assert not stale, f"table entries for routes the gateway does not have: {stale}"


async def test_the_content_gateway_is_documented_with_its_formats(
    client: httpx.AsyncClient,
) -> None:
    paths = (await fetch_document(client))["paths"]
    for path in ("/ipfs/{cid}", "/ipfs/{cid}/{path}"):
        assert set(paths[path]) == {"get", "head"}
        params = {param["name"]: param for param in paths[path]["get"]["parameters"]}
        assert params["format"]["schema"]["enum"] == ["raw", "car"]
        assert params["Range"]["in"] == "header"
        assert "Accept" in paths[path]["get"]["description"]
        assert "application/vnd.ipld.car" in paths[path]["get"]["responses"]["200"]["content"]
        assert "content" not in paths[path]["head"]["responses"]["200"]
    assert "path" not in {param["name"] for param in paths["/ipfs/{cid}"]["get"]["parameters"]}
    events = paths["/api/v1/events"]["get"]
    assert "text/event-stream" in events["responses"]["200"]["content"]
    assert "Last-Event-ID" in {param["name"] for param in events["parameters"]}


async def test_api_operations_need_the_token(client: httpx.AsyncClient) -> None:
    document = await fetch_document(client)
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["cookie"] == {
        **schemes["cookie"],
        "type": "apiKey",
        "in": "cookie",
        "name": f"{SESSION_COOKIE_PREFIX}<port>",
    }
    for path, method, operation in operations(document):
        if path.startswith("/api/"):
            assert operation["security"] == [{"bearer": []}, {"cookie": []}], (method, path)
            assert "401" in operation["responses"], (method, path)
    assert document["paths"]["/login"]["get"]["security"] == []


async def test_mutating_operations_list_their_errors(client: httpx.AsyncClient) -> None:
    for path, method, operation in operations(await fetch_document(client)):
        if method not in MUTATING:
            continue
        # Only what proves itself otherwise (Stripe's signed webhooks) goes without a token.
        token = {"401"} if operation["security"] else set()
        wanted = token | {"403"} | ({"413", "422"} if "requestBody" in operation else set())
        assert wanted <= set(operation["responses"]), (method, path)
        for status, response in operation["responses"].items():
            if status[0] in "45":
                assert "application/problem+json" in response["content"], (method, path, status)


async def test_the_schemas_describe_real_responses(client: httpx.AsyncClient) -> None:
    document = await fetch_document(client)
    created = await client.post("/api/v1/listings", json=LISTING, headers=AUTH)
    assert created.status_code == 201, created.text
    validator(document, "Listing").validate(created.json())
    found = await client.get("/api/v1/listings", headers=AUTH)
    page = document["paths"]["/api/v1/listings"]["get"]["responses"]["200"]["content"]
    OAS31Validator(
        {**page["application/json"]["schema"], "components": document["components"]}
    ).validate(found.json())
    posted = await client.post(
        "/api/v1/channels/general/messages", json={"text": "hello"}, headers=AUTH
    )
    validator(document, "Message").validate(posted.json())
    profile = await client.put("/api/v1/profile", json={"name": "Ada"}, headers=AUTH)
    validator(document, "Profile").validate(profile.json())
    missing = await client.get("/api/v1/listings/nope", headers=AUTH)
    assert missing.status_code == 404
    validator(document, "Problem").validate(missing.json())


async def test_the_document_and_page_need_the_token(client: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=client.base_url) as anonymous:
        for path in (DOCUMENT, DOCS):
            assert (await anonymous.get(path)).status_code == 401


async def test_the_reference_page_is_served(client: httpx.AsyncClient) -> None:
    redirect = await client.get(DOCS, headers=AUTH)
    assert redirect.status_code == 307 and redirect.headers["location"] == PAGE
    page = await client.get(PAGE)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<script type="module" src="/ui/api-docs.js"></script>' in html
    assert '<link rel="stylesheet" href="/ui/style.css">' in html
    # The page runs under script-src 'self' and style-src 'self': nothing inline.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert not re.search(r"<style|\sstyle=|\son\w+=", html)
    script = await client.get("/ui/api-docs.js", headers=AUTH)
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
