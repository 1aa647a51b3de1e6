"""The web UI: plain HTML, CSS and JS modules shipped in the package and served from memory.

There is no build step: the files in gateway/ui/ are what the browser runs. They are read once
when the app is built, so a running node serves exactly the files it started with.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zion.gateway.problems import problem

UI_PACKAGE: Final = "zion.gateway"
UI_FOLDER: Final = "ui"
INDEX: Final = "index.html"
CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}
#: The browser revalidates (cheaply, by ETag) so a node upgrade shows at once.
CACHE_CONTROL: Final = "no-cache"


@dataclass(frozen=True)
class UiFile:
    body: bytes
    content_type: str
    etag: str


def load_ui_files() -> dict[str, UiFile]:
    folder = resources.files(UI_PACKAGE).joinpath(UI_FOLDER)
    files: dict[str, UiFile] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if not entry.is_file() or suffix not in CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        files[entry.name] = UiFile(body, CONTENT_TYPES[suffix], etag)
    return files


def routes() -> list[Route]:
    files = load_ui_files()

    def serve(name: str, request: Request) -> Response:
        file = files.get(name)
        if file is None:
            return problem(404, "not-found", f"no UI file {name[:80]!r}")
        headers = {"ETag": file.etag, "Cache-Control": CACHE_CONTROL}
        if request.headers.get("if-none-match") == file.etag:
            return Response(status_code=304, headers=headers)
        return Response(file.body, media_type=file.content_type, headers=headers)

    async def index(request: Request) -> Response:
        return serve(INDEX, request)

    async def asset(request: Request) -> Response:
        return serve(request.path_params["name"], request)

    return [
        Route("/", index, methods=["GET"]),
        Route("/ui/{name}", asset, methods=["GET"]),
    ]
