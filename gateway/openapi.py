"""The gateway's OpenAPI 3.1 document, and the two routes that serve it and its reference page.

The table in gateway.openapi_table describes every route once. ``document`` walks the routes
the app really has and publishes what the table says about each, so the document never shows
a route that is not served; a served route missing from the table is missing from the
document, and the gateway tests name it.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Sequence
from typing import Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from zion import __version__
from zion.gateway.openapi_table import (
    DOCS_PAGE_URL,
    DOCS_PATH,
    DOCUMENT_PATH,
    INFO_DESCRIPTION,
    JSON,
    OPENAPI_VERSION,
    SCHEMAS,
    SECURITY_REQUIREMENTS,
    TAGS,
    TITLE,
    Op,
    operations,
    problem_response,
)
from zion.gateway.security import MAX_BODY_BYTES, SESSION_COOKIE_PREFIX, UPLOAD_PATHS

__all__ = ["DOCS_PATH", "DOCUMENT_PATH", "document", "operations", "routes"]

#: ``{name:convertor}`` in a Starlette path; an OpenAPI path has a plain ``{name}``.
_CONVERTOR: Final = re.compile(r"{(\w+):\w+}")
_TEMPLATED: Final = re.compile(r"{(\w+)}")


# --- the document ------------------------------------------------------------------------


def document(routes: Sequence[BaseRoute]) -> JSON:
    """The OpenAPI document of the served ``routes`` (an app's, mounts included)."""
    table = operations()
    paths: dict[str, JSON] = {}
    for path, methods in _endpoints(routes):
        for method in sorted(methods):
            op = table.get((method, path))
            if op is None:
                continue  # HEAD implied by GET, the web UI's files, or an omission
            for published in op.paths or (_openapi_path(path),):
                paths.setdefault(published, {})[method.lower()] = _operation(method, published, op)
    security_schemes = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "the API token"},
        "cookie": {
            "type": "apiKey",
            "in": "cookie",
            "name": f"{SESSION_COOKIE_PREFIX}<port>",
            "description": "set by /login; <port> is the gateway's port",
        },
    }
    # Deep-copied: the table's shared pieces must not change with a caller's copy.
    return copy.deepcopy(
        {
            "openapi": OPENAPI_VERSION,
            "info": {"title": TITLE, "version": __version__, "description": INFO_DESCRIPTION},
            "tags": TAGS,
            "paths": paths,
            "components": {"schemas": SCHEMAS, "securitySchemes": security_schemes},
        }
    )


def _endpoints(
    routes: Sequence[BaseRoute], prefix: str = ""
) -> Iterator[tuple[str, frozenset[str]]]:
    for route in routes:
        if isinstance(route, Route):
            yield prefix + route.path, frozenset(route.methods or ())
        elif isinstance(route, Mount):
            yield from _endpoints(route.routes, prefix + route.path)


def _openapi_path(path: str) -> str:
    if ":path}" in path:
        raise ValueError(f"{path}: a {{name:path}} spans segments; give its entry its paths")
    return _CONVERTOR.sub(r"{\1}", path)


def _operation(method: str, path: str, op: Op) -> JSON:
    templated = set(_TEMPLATED.findall(path))
    params = [p for p in op.params if p["in"] != "path" or p["name"] in templated]
    undescribed = templated - {p["name"] for p in params if p["in"] == "path"}
    if undescribed:
        raise ValueError(f"{method} {path}: describe path parameters {sorted(undescribed)}")
    errors = dict(op.errors)
    # What the security middleware answers before any route runs.
    if op.auth == "required":
        errors.setdefault(401, "no API token, or a wrong one")
        errors.setdefault(403, "a foreign Origin, or a request from another site's page")
    elif op.auth == "when-remote":
        errors.setdefault(401, "no API token, on a gateway bound beyond loopback")
    if op.body is not None:
        limit = "the node's upload limit" if path in UPLOAD_PATHS else f"{MAX_BODY_BYTES} bytes"
        errors.setdefault(413, f"the body is larger than {limit}")
    responses = {str(status): response for status, response in op.responses.items()}
    responses |= {str(status): problem_response(when) for status, when in errors.items()}
    if method == "HEAD":
        responses = {
            status: {key: value for key, value in response.items() if key != "content"}
            for status, response in responses.items()
        }
    operation: JSON = {
        "operationId": method.lower() + re.sub(r"\W+", "_", path).rstrip("_"),
        "tags": [op.tag],
        "summary": op.summary,
        "responses": dict(sorted(responses.items())),
        "security": SECURITY_REQUIREMENTS[op.auth],
    }
    if op.description:
        operation["description"] = op.description
    if params:
        operation["parameters"] = params
    if op.body is not None:
        operation["requestBody"] = op.body
    return operation


# --- the routes --------------------------------------------------------------------------


def routes() -> list[Route]:
    """GET /api/v1/openapi.json and /api/v1/docs. The document describes the app serving it
    (``request.app``), built at its first request, when every route is in place."""
    built: bytes | None = None

    async def openapi_json(request: Request) -> Response:
        nonlocal built
        if built is None:
            built = json.dumps(document(request.app.routes)).encode()
        return Response(built, media_type="application/json")

    async def docs(_: Request) -> Response:
        # The page is one of the web UI's files (gateway.webui serves them).
        return RedirectResponse(DOCS_PAGE_URL, status_code=307)

    return [
        Route(DOCUMENT_PATH, openapi_json, methods=["GET"]),
        Route(DOCS_PATH, docs, methods=["GET"]),
    ]
