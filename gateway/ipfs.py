"""`/ipfs/{cid}[/path]`: the IPFS path gateway and trustless gateway, and the content API.

Follows specs.ipfs.tech (path-gateway, trustless-gateway): GET and HEAD; an ETag per response
kind; immutable caching; single byte ranges; directories redirected to a trailing slash, then
index.html or a listing; `?format=raw|car` or the matching Accept types; `?filename=` and
`?download=true`. Errors are problem documents: 400 for a malformed CID or path, 404 for a
path that does not exist, 504 when content cannot be retrieved in time.
"""

from __future__ import annotations

import html
import re
import secrets
import tempfile
from typing import Any, Final
from urllib.parse import quote, unquote

import trio
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from zion.gateway.problems import problem
from zion.gateway.services import (
    BadRequest,
    Content,
    ContentNode,
    InvalidInput,
    Services,
    Upload,
)
from zion.gateway.sniff import SNIFF_BYTES, sniff, type_from_name
from zion.protocols.cid import Cid
from zion.protocols.errors import ProtocolError
from zion.protocols.records import Record

#: The multipart part type of an (empty) directory in an upload, as in Kubo's /api/v0/add.
DIRECTORY_PART_TYPE: Final = "application/x-directory"
IMMUTABLE: Final = "public, max-age=29030400, immutable"
RAW_TYPE: Final = "application/vnd.ipld.raw"
CAR_TYPE: Final = "application/vnd.ipld.car"
#: Content from /ipfs/ is same-origin with the API: as a sandboxed document it gets an opaque
#: origin, so a page or SVG in it cannot use the member's session (subdomains: issue 5).
SANDBOX: Final = "sandbox"
#: Entries shown by one HTML directory listing, and returned by one ls call.
MAX_LISTED_ENTRIES: Final = 10_000
MAX_LS_ENTRIES: Final = 100_000
#: Files per multipart upload and bytes per non-file form field.
MAX_UPLOAD_PARTS: Final = 100_000
MAX_FORM_FIELD_BYTES: Final = 64 * 1024
#: Digits of a range bound: 18 reach an exabyte, and int() of thousands of digits is refused.
_RANGE: Final = re.compile(r"^bytes=(\d{0,18})-(\d{0,18})$")
_UNSAFE_FILENAME: Final = re.compile(r'["\\\r\n\x00-\x1f]')


def routes(content: Content) -> list[Route]:
    gateway = _IpfsGateway(content)
    return [
        Route("/ipfs/{rest:path}", gateway.serve, methods=["GET", "HEAD"]),
        Route("/api/v1/ipfs/add", gateway.add, methods=["POST"]),
        Route("/api/v1/ipfs/car", gateway.import_car, methods=["POST"]),
        Route("/api/v1/ipfs/ls/{rest:path}", gateway.ls, methods=["GET"]),
        Route("/api/v1/ipfs/pins", gateway.list_pins, methods=["GET"]),
        Route("/api/v1/ipfs/pins/{cid}", gateway.pin, methods=["POST"]),
        Route("/api/v1/ipfs/pins/{cid}", gateway.unpin, methods=["DELETE"]),
        Route("/api/v1/ipfs/gc", gateway.gc, methods=["POST"]),
        Route("/api/v1/ipfs/stat", gateway.stat, methods=["GET"]),
    ]


def parse_cid(text: str) -> Cid:
    try:
        return Cid.parse(text)
    except ProtocolError as exc:
        raise BadRequest(f"{text[:100]!r} is not a valid CID ({exc.detail})") from None


def split_path(request: Request, prefix: str) -> tuple[str, list[str], bool]:
    """(cid text, decoded segments, ends with "/") from the raw request path.

    The raw path is split before percent-decoding so that an encoded "/" stays inside its
    segment; "." and ".." are refused rather than resolved: content paths have no parents.
    """
    raw = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    raw = raw.split("?", 1)[0]
    rest = raw[len(prefix) :]
    cid_text, _, path = rest.partition("/")
    trailing = rest.endswith("/")
    try:
        segments = [unquote(part, errors="strict") for part in path.split("/") if part]
    except UnicodeDecodeError:
        raise BadRequest("the path is not UTF-8 once percent-decoded") from None
    for segment in segments:
        if segment in (".", "..") or "\x00" in segment:
            raise BadRequest(f"path segment {segment[:100]!r} is not allowed")
    return cid_text, segments, trailing


class _IpfsGateway:
    def __init__(self, content: Content) -> None:
        self.content = content

    # --- the path and trustless gateway ---

    async def serve(self, request: Request) -> Response:
        cid_text, segments, trailing = split_path(request, "/ipfs/")
        root = parse_cid(cid_text)
        response_format = _requested_format(request)
        node = await self.content.resolve(root, segments)
        ipfs_path = "/ipfs/" + cid_text + "".join("/" + quote(s) for s in segments)
        headers = {
            "X-Ipfs-Path": ipfs_path,
            "Vary": "Accept",
            "Content-Security-Policy": SANDBOX,
        }
        if response_format == "raw":
            return await self._raw(request, node, headers)
        if response_format == "car":
            return self._car(request, root, segments, node, headers)
        if node.kind == "directory":
            if not trailing:
                # From the raw path: names with %3F or %25 must stay encoded.
                raw = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
                query = f"?{request.url.query}" if request.url.query else ""
                return RedirectResponse(raw.split("?", 1)[0] + "/" + query, status_code=301)
            try:
                index = await self.content.resolve(node.cid, ["index.html"])
            except Exception:
                index = None
            if index is None or index.kind != "file":
                return await self._listing(request, node, ipfs_path, headers)
            node, segments = index, [*segments, "index.html"]
        return await self._file(request, node, segments, headers)

    async def _file(
        self, request: Request, node: ContentNode, segments: list[str], headers: dict[str, str]
    ) -> Response:
        etag = f'"{node.cid}"'
        headers |= {"ETag": etag, "Cache-Control": IMMUTABLE, "Accept-Ranges": "bytes"}
        if _etag_matches(request, etag):
            return Response(status_code=304, headers=headers)
        filename = request.query_params.get("filename")
        kind = type_from_name(filename or (segments[-1] if segments else None))
        if kind is None:
            head = b""
            async for piece in self.content.read(node, 0, SNIFF_BYTES):
                head += piece
            kind = sniff(head)
        headers["Content-Type"] = kind
        headers["X-Content-Type-Options"] = "nosniff"
        disposition = _disposition(request, filename)
        if disposition:
            headers["Content-Disposition"] = disposition
        start, end, status = 0, node.size, 200
        try:
            byte_range = _parse_range(request.headers.get("range"), node.size)
        except _Unsatisfiable:
            headers["Content-Range"] = f"bytes */{node.size}"
            return Response(status_code=416, headers=headers)
        if byte_range is not None:
            start, end = byte_range
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{node.size}"
        headers["Content-Length"] = str(end - start)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers)
        return StreamingResponse(
            self.content.read(node, start, end), status_code=status, headers=headers
        )

    async def _raw(self, request: Request, node: ContentNode, headers: dict[str, str]) -> Response:
        block = await self.content.block(node.cid)
        etag = f'"{node.cid}.raw"'
        headers |= {
            "ETag": etag,
            "Cache-Control": IMMUTABLE,
            "Content-Type": RAW_TYPE,
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'attachment; filename="{node.cid}.bin"',
        }
        if _etag_matches(request, etag):
            return Response(status_code=304, headers=headers)
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(block))
            return Response(status_code=200, headers=headers)
        return Response(block, headers=headers)

    def _car(
        self,
        request: Request,
        root: Cid,
        segments: list[str],
        node: ContentNode,
        headers: dict[str, str],
    ) -> Response:
        etag = f'"{node.cid}.car"'
        headers |= {
            "ETag": etag,
            "Cache-Control": IMMUTABLE,
            # Depth-first from the root (after the blocks of the path), each block once.
            "Content-Type": f"{CAR_TYPE}; version=1; order=dfs; dups=n",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'attachment; filename="{node.cid}.car"',
        }
        if _etag_matches(request, etag):
            return Response(status_code=304, headers=headers)
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers)
        return StreamingResponse(self.content.car(root, segments), headers=headers)

    async def _listing(
        self, request: Request, node: ContentNode, ipfs_path: str, headers: dict[str, str]
    ) -> Response:
        rows: list[str] = []
        async for entry in self.content.list_directory(node):
            if len(rows) == MAX_LISTED_ENTRIES:
                rows.append(f"<tr><td colspan=3>(only the first {MAX_LISTED_ENTRIES:,})</td></tr>")
                break
            size = "" if entry.size is None else f"{entry.size:,}"
            rows.append(
                f'<tr><td><a href="{quote(entry.name)}">{html.escape(entry.name)}</a></td>'
                f'<td class="cid">{entry.cid}</td><td class="size">{size}</td></tr>'
            )
        title = html.escape(ipfs_path)
        body = (
            "<!doctype html><html><head><meta charset=utf-8>"
            f"<title>{title}</title></head><body><h1>Index of {title}</h1>"
            "<table><tr><th>Name</th><th>CID</th><th>Size</th></tr>"
            + "".join(rows)
            + "</table></body></html>"
        )
        headers |= {
            "ETag": f'"DirIndex-{node.cid}"',
            "Cache-Control": IMMUTABLE,
            "Content-Type": "text/html; charset=utf-8",
        }
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers)
        return Response(body, headers=headers)

    # --- the content API ---

    async def add(self, request: Request) -> Response:
        params = request.query_params
        form = await request.form(
            max_files=MAX_UPLOAD_PARTS, max_fields=100, max_part_size=MAX_FORM_FIELD_BYTES
        )
        try:
            uploads = [
                Upload(
                    value.filename or key,
                    value.file,
                    is_directory=value.content_type == DIRECTORY_PART_TYPE,
                )
                for key, value in form.multi_items()
                if isinstance(value, UploadFile)
            ]
            result = await self.content.add(
                uploads,
                profile=params.get("profile"),
                pin=_flag(params.get("pin"), True),
                wrap=_flag(params.get("wrap"), False),
            )
        finally:
            await form.close()
        return JSONResponse(result, status_code=201)

    async def import_car(self, request: Request) -> Response:
        with tempfile.TemporaryFile() as spool:
            async for chunk in request.stream():
                await trio.to_thread.run_sync(spool.write, chunk)
            spool.seek(0)
            roots = await self.content.import_car(
                spool, pin=_flag(request.query_params.get("pin"), True)
            )
        return JSONResponse({"roots": [str(root) for root in roots]}, status_code=201)

    async def ls(self, request: Request) -> Response:
        cid_text, segments, _ = split_path(request, "/api/v1/ipfs/ls/")
        node = await self.content.resolve(parse_cid(cid_text), segments)
        entries: list[dict[str, Any]] = []
        truncated = False
        if node.kind == "directory":
            async for entry in self.content.list_directory(node):
                if len(entries) == MAX_LS_ENTRIES:
                    truncated = True
                    break
                entries.append({"name": entry.name, "cid": str(entry.cid), "size": entry.size})
        return JSONResponse(
            {
                "cid": str(node.cid),
                "kind": node.kind,
                "size": node.size,
                "items": entries,
                "truncated": truncated,
            }
        )

    async def list_pins(self, _: Request) -> Response:
        return JSONResponse({"items": self.content.pins()})

    async def pin(self, request: Request) -> Response:
        cid = parse_cid(request.path_params["cid"])
        await self.content.pin(cid)
        return JSONResponse({"cid": str(cid), "pinned": True})

    async def unpin(self, request: Request) -> Response:
        cid = parse_cid(request.path_params["cid"])
        if not await self.content.unpin(cid):
            return problem(404, "not-found", f"{cid} is not pinned")
        return Response(status_code=204)

    async def gc(self, _: Request) -> Response:
        return JSONResponse(await self.content.gc())

    async def stat(self, _: Request) -> Response:
        return JSONResponse(self.content.stats())


def _requested_format(request: Request) -> str | None:
    explicit = request.query_params.get("format")
    if explicit is not None:
        if explicit not in ("raw", "car"):
            raise BadRequest(f"format must be raw or car, not {explicit[:40]!r}")
        return explicit
    accept = request.headers.get("accept", "")
    if RAW_TYPE in accept:
        return "raw"
    if CAR_TYPE in accept:
        return "car"
    return None


def _etag_matches(request: Request, etag: str) -> bool:
    """If-None-Match uses weak comparison (RFC 9110 13.1.2): W/ prefixes do not matter."""
    wanted = request.headers.get("if-none-match")
    if wanted is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in wanted.split(",")}
    return "*" in tags or etag in tags


class _Unsatisfiable(Exception):
    pass


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single ``bytes=`` range as [start, end); None to serve everything (no header, a
    header we do not parse, or several ranges: RFC 9110 lets a server ignore those).
    _Unsatisfiable when it starts past the end."""
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        start, end = max(size - int(last), 0), size
    else:
        start = int(first)
        end = size if not last else min(int(last) + 1, size)
        if last and int(last) < start:
            return None
    if start >= size or start >= end:
        raise _Unsatisfiable
    return start, end


def _disposition(request: Request, filename: str | None) -> str | None:
    download = request.query_params.get("download") == "true"
    if filename is None:
        return "attachment" if download else None
    kind = "attachment" if download else "inline"
    ascii_name = _UNSAFE_FILENAME.sub("_", filename.encode("ascii", "replace").decode())
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def _flag(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise InvalidInput(f"{value[:20]!r} is not true or false")


async def save_with_images(
    services: Services,
    fields: dict[str, Any],
    files: list[UploadFile],
    listing_id: str | None = None,
) -> Record:
    """Add each image to IPFS, then create the listing (or update ``listing_id``) with them
    appended. Until the listing pins them, the images are pinned by this upload alone (an
    owner of its own: a pin the member already had on the same image is left alone), so a GC
    in between cannot take them."""
    owner = f"upload:{secrets.token_hex(8)}"
    cids = []
    for upload in files:
        head = upload.file.read(SNIFF_BYTES)
        upload.file.seek(0)
        kind = sniff(head)
        # SVG is a document that can carry script: not accepted as a listing's picture.
        if not kind.startswith("image/") or kind == "image/svg+xml":
            raise InvalidInput(
                f"{(upload.filename or 'a file')[:80]!r} is not a PNG, JPEG, GIF or WebP image"
            )
        added = await services.content.add(
            [Upload(upload.filename or "image", upload.file)],
            profile=None,
            pin=True,
            wrap=False,
            owner=owner,
        )
        cids.append(Cid.parse(added["cid"]))
    existing = fields.get("images", [])
    if not isinstance(existing, list):
        raise InvalidInput("images must be a list of CIDs")
    fields = {**fields, "images": [*existing, *(str(cid) for cid in cids)]}
    try:
        if listing_id is None:
            return await services.market.create(fields)
        return await services.market.update(listing_id, fields)
    finally:
        for cid in cids:
            await services.content.unpin(cid, owner)
