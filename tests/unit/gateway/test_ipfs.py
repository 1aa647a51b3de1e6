"""/ipfs/ (path and trustless gateway) and /api/v1/ipfs/ over a real gateway and blockstore."""

from __future__ import annotations

import hashlib
import io
import json
import random

import httpx
import pytest

from tests.unit.gateway.harness import AUTH, UPLOAD_LIMIT, anonymous, client
from zion.protocols.car import encode_header, encode_section, read_car
from zion.protocols.cid import RAW, Cid
from zion.storage.unixfs import PROFILES, import_bytes
from zion.storage.unixfs.importer import DiscardingSink

__all__ = ["client"]

DATA = random.Random(5).randbytes(3 * 1024 * 1024 + 17)  # 4 chunks under the default profile
IMMUTABLE = "public, max-age=29030400, immutable"


async def add(http: httpx.AsyncClient, files: list[tuple[str, bytes]], **params: str) -> str:
    response = await http.post(
        "/api/v1/ipfs/add",
        files=[("file", (name, data)) for name, data in files],
        params=params,
        headers=AUTH,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["cid"])


async def test_added_file_has_the_importers_cid_and_reads_back(client: httpx.AsyncClient) -> None:
    cid = await add(client, [("big.bin", DATA)])
    assert cid == str(import_bytes(DATA, DiscardingSink()).cid)
    response = await client.get(f"/ipfs/{cid}")
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["etag"] == f'"{cid}"'
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["content-type"] == "application/octet-stream"


async def test_profile_parameter_chooses_the_cid(client: httpx.AsyncClient) -> None:
    cid = await add(client, [("f", b"hello")], profile="kubo-legacy")
    assert cid == str(import_bytes(b"hello", DiscardingSink(), PROFILES["kubo-legacy"]).cid)
    assert cid.startswith("Qm")
    bad = await client.post(
        "/api/v1/ipfs/add", files=[("file", ("f", b"x"))], params={"profile": "nope"}, headers=AUTH
    )
    assert bad.status_code == 422


async def test_head_has_the_headers_and_no_body(client: httpx.AsyncClient) -> None:
    cid = await add(client, [("big.bin", DATA)])
    response = await client.head(f"/ipfs/{cid}")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["etag"] == f'"{cid}"'


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 1),
        ("bytes=1048570-1048580", 1048570, 1048581),  # across a chunk boundary
        ("bytes=3145700-", 3145700, len(DATA)),
        ("bytes=-10", len(DATA) - 10, len(DATA)),
        ("bytes=100-99999999", 100, len(DATA)),
    ],
)
async def test_single_ranges(client: httpx.AsyncClient, header: str, start: int, end: int) -> None:
    cid = await add(client, [("big.bin", DATA)])
    response = await client.get(f"/ipfs/{cid}", headers={"Range": header})
    assert response.status_code == 206
    assert response.content == DATA[start:end]
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{len(DATA)}"


async def test_unsatisfiable_and_multiple_ranges(client: httpx.AsyncClient) -> None:
    cid = await add(client, [("small.txt", b"0123456789")])
    beyond = await client.get(f"/ipfs/{cid}", headers={"Range": "bytes=10-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == "bytes */10"
    several = await client.get(f"/ipfs/{cid}", headers={"Range": "bytes=0-1,4-5"})
    assert several.status_code == 200 and several.content == b"0123456789"


async def test_conditional_request(client: httpx.AsyncClient) -> None:
    cid = await add(client, [("a.txt", b"abc")])
    response = await client.get(f"/ipfs/{cid}", headers={"If-None-Match": f'"{cid}"'})
    assert response.status_code == 304 and response.content == b""


async def test_content_type_from_extension_then_sniffing(client: httpx.AsyncClient) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
    root = await add(
        client, [("d/photo.jpg", png), ("d/noext", png), ("d/notes", b"plain words\n")]
    )
    by_name = await client.get(f"/ipfs/{root}/photo.jpg")
    assert by_name.headers["content-type"] == "image/jpeg"
    sniffed = await client.get(f"/ipfs/{root}/noext")
    assert sniffed.headers["content-type"] == "image/png"
    text = await client.get(f"/ipfs/{root}/notes")
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.headers["x-content-type-options"] == "nosniff"


async def test_directories(client: httpx.AsyncClient) -> None:
    root = await add(
        client,
        [
            ("site/a.txt", b"A"),
            ("site/<b>&.txt", b"B"),
            ("site/www/index.html", b"<h1>hi</h1>"),
            ("site/www/x.css", b"p{}"),
        ],
    )
    redirect = await client.get(f"/ipfs/{root}?x=1")
    assert redirect.status_code == 301
    assert redirect.headers["location"].endswith(f"/ipfs/{root}/?x=1")
    listing = await client.get(f"/ipfs/{root}/")
    assert listing.status_code == 200
    assert listing.headers["content-type"] == "text/html; charset=utf-8"
    assert "a.txt" in listing.text and "&lt;b&gt;&amp;.txt" in listing.text
    assert "<b>&" not in listing.text
    index = await client.get(f"/ipfs/{root}/www/")
    assert index.text == "<h1>hi</h1>"
    assert index.headers["content-type"].startswith("text/html")
    entries = (await client.get(f"/api/v1/ipfs/ls/{root}")).json()["items"]
    assert [entry["name"] for entry in entries] == ["<b>&.txt", "a.txt", "www"]


async def test_raw_blocks(client: httpx.AsyncClient) -> None:
    cid = await add(client, [("big.bin", DATA)])
    for response in (
        await client.get(f"/ipfs/{cid}?format=raw"),
        await client.get(f"/ipfs/{cid}", headers={"Accept": "application/vnd.ipld.raw"}),
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/vnd.ipld.raw"
        assert response.headers["etag"] == f'"{cid}.raw"'
        assert Cid.parse(cid).matches(response.content)


async def test_car_holds_the_whole_dag(client: httpx.AsyncClient) -> None:
    cid = await add(client, [("big.bin", DATA)])
    response = await client.get(f"/ipfs/{cid}", headers={"Accept": "application/vnd.ipld.car"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.ipld.car")
    roots, sections = read_car(io.BytesIO(response.content))
    assert [str(root) for root in roots] == [cid]
    blocks = list(sections)
    assert all(block_cid.matches(block) for block_cid, block in blocks)
    leaves = [block for block_cid, block in blocks if block_cid.codec == RAW]
    assert b"".join(leaves) == DATA


async def test_car_of_a_path_includes_the_path_blocks(client: httpx.AsyncClient) -> None:
    root = await add(client, [("d/sub/f.txt", b"deep")])
    response = await client.get(f"/ipfs/{root}/sub/f.txt?format=car")
    roots, sections = read_car(io.BytesIO(response.content))
    assert [str(r) for r in roots] == [root]
    blocks = [block for _, block in sections]
    assert len(blocks) == 3 and blocks[-1] == b"deep"  # root dir, sub dir, the file


async def test_filename_and_download(client: httpx.AsyncClient) -> None:
    cid = await add(client, [("x", b"data")])
    inline = await client.get(f"/ipfs/{cid}?filename=report.pdf")
    assert inline.headers["content-disposition"].startswith('inline; filename="report.pdf"')
    assert inline.headers["content-type"] == "application/pdf"
    download = await client.get(f"/ipfs/{cid}?filename=r%C3%A9sum%C3%A9.txt&download=true")
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "UTF-8''r%C3%A9sum%C3%A9.txt" in disposition


@pytest.mark.parametrize(
    "path",
    [
        "/ipfs/not-a-cid",
        "/ipfs/bafy",
        "/ipfs/QmQmQm",
        "/ipfs/" + "b" + "a" * 300,
    ],
)
async def test_malformed_cids_are_400(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


async def test_unknown_content_is_a_504_problem(client: httpx.AsyncClient) -> None:
    cid = Cid.for_block(RAW, b"nobody has this")
    response = await client.get(f"/ipfs/{cid}")
    assert response.status_code == 504
    assert response.json()["code"] == "retrieval-timeout"


async def test_missing_paths_and_traversal(client: httpx.AsyncClient) -> None:
    root = await add(client, [("d/a.txt", b"A")])
    assert (await client.get(f"/ipfs/{root}/missing.txt")).status_code == 404
    assert (await client.get(f"/ipfs/{root}/a.txt/below")).status_code == 404
    for attempt in (
        f"/ipfs/{root}/%2e%2e/a.txt",
        f"/ipfs/{root}/%2e/a.txt",
        f"/ipfs/{root}/%2e%2e%2fa.txt",
    ):
        response = await client.get(httpx.URL(attempt))
        assert response.status_code in (400, 404), attempt
        assert response.headers["content-type"] == "application/problem+json"


async def test_adding_needs_the_token(client: httpx.AsyncClient) -> None:
    async with anonymous(client) as anon:
        response = await anon.post("/api/v1/ipfs/add", files=[("file", ("a", b"x"))])
    assert response.status_code == 401
    assert (await client.get("/api/v1/ipfs/stat")).json()["blocks"] == 0


async def test_oversized_upload_is_refused_and_stores_nothing(client: httpx.AsyncClient) -> None:
    big = b"\0" * (UPLOAD_LIMIT + 1)
    response = await client.post("/api/v1/ipfs/add", files=[("file", ("big", big))], headers=AUTH)
    assert response.status_code == 413
    assert (await client.get("/api/v1/ipfs/stat")).json()["blocks"] == 0


async def test_pins_and_gc(client: httpx.AsyncClient) -> None:
    kept = await add(client, [("kept", b"kept")])
    dropped = await add(client, [("dropped", b"dropped")], pin="false")
    pins = (await client.get("/api/v1/ipfs/pins")).json()["items"]
    assert pins == [{"cid": kept, "owners": ["user"]}]
    result = (await client.post("/api/v1/ipfs/gc", headers=AUTH)).json()
    assert result["blocks_removed"] == 1
    assert (await client.get(f"/ipfs/{kept}")).content == b"kept"
    assert (await client.get(f"/ipfs/{dropped}")).status_code == 504
    assert (await client.delete(f"/api/v1/ipfs/pins/{kept}", headers=AUTH)).status_code == 204
    assert (await client.delete(f"/api/v1/ipfs/pins/{kept}", headers=AUTH)).status_code == 404
    await client.post("/api/v1/ipfs/gc", headers=AUTH)
    assert (await client.get(f"/ipfs/{kept}")).status_code == 504


async def test_car_round_trip_through_gc(client: httpx.AsyncClient) -> None:
    cid = await add(client, [("big.bin", DATA)])
    car = (await client.get(f"/ipfs/{cid}?format=car")).content
    await client.delete(f"/api/v1/ipfs/pins/{cid}", headers=AUTH)
    await client.post("/api/v1/ipfs/gc", headers=AUTH)
    assert (await client.get("/api/v1/ipfs/stat")).json()["blocks"] == 0
    imported = await client.post("/api/v1/ipfs/car", content=car, headers=AUTH)
    assert imported.status_code == 201 and imported.json()["roots"] == [cid]
    assert (await client.get(f"/ipfs/{cid}")).content == DATA


async def test_a_car_with_a_forged_block_is_refused(client: httpx.AsyncClient) -> None:
    good = Cid.for_block(RAW, b"good")
    car = encode_header([good]) + encode_section(good, b"evil")
    response = await client.post("/api/v1/ipfs/car", content=car, headers=AUTH)
    assert response.status_code == 422
    assert (await client.get("/api/v1/ipfs/pins")).json()["items"] == []
    assert hashlib.sha256(b"evil").digest() not in response.content


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
LISTING_FIELDS = {
    "title": "Lamp",
    "price": {"amount": 1500, "currency": "EUR"},
    "category": "home",
}


async def test_a_listing_created_with_image_files(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/listings",
        data={"listing": json.dumps(LISTING_FIELDS)},
        files=[("image", ("lamp.png", PNG, "image/png"))],
        headers=AUTH,
    )
    assert response.status_code == 201, response.text
    listing = response.json()
    (image,) = listing["images"]
    assert (await client.get(f"/ipfs/{image}")).content == PNG
    pins = (await client.get("/api/v1/ipfs/pins")).json()["items"]
    assert [pin["owners"] for pin in pins if pin["cid"] == image] == [
        [f"listing:{listing['author']}/{listing['id']}"]
    ]
    # Deleting the listing releases its images: GC may take them.
    assert (await client.delete(f"/api/v1/listings/{listing['id']}", headers=AUTH)).is_success
    await client.post("/api/v1/ipfs/gc", headers=AUTH)
    assert (await client.get(f"/ipfs/{image}")).status_code == 504


async def test_listing_image_uploads_are_checked(client: httpx.AsyncClient) -> None:
    not_image = await client.post(
        "/api/v1/listings",
        data={"listing": json.dumps(LISTING_FIELDS)},
        files=[("image", ("virus.exe", b"MZ\x90\x00 not a picture"))],
        headers=AUTH,
    )
    assert not_image.status_code == 422
    bad_listing = await client.post(
        "/api/v1/listings",
        data={"listing": json.dumps({**LISTING_FIELDS, "price": "free"})},
        files=[("image", ("lamp.png", PNG))],
        headers=AUTH,
    )
    assert bad_listing.status_code == 422
    assert (await client.get("/api/v1/listings")).json()["items"] == []
    assert (await client.get("/api/v1/ipfs/pins")).json()["items"] == []


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/ipfs/k-1abc", {}),
        ("/ipfs/k" + "z" * 120, {}),
        ("/ipfs/{cid}/%FF", {}),
    ],
)
async def test_hostile_requests_get_a_400_not_a_crash(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    cid = await add(client, [("d/a.txt", b"A")])
    response = await client.get(path.format(cid=cid), headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_range_with_absurd_numbers_is_ignored(client: httpx.AsyncClient) -> None:
    cid = await add(client, [("a.txt", b"0123456789")])
    response = await client.get(f"/ipfs/{cid}", headers={"Range": "bytes=" + "9" * 5000 + "-"})
    assert response.status_code == 200 and response.content == b"0123456789"


async def test_content_is_sandboxed_from_the_api(client: httpx.AsyncClient) -> None:
    cid = await add(client, [("page.html", b"<script>fetch('/api/v1/node')</script>")])
    response = await client.get(f"/ipfs/{cid}")
    assert response.headers["content-security-policy"] == "sandbox"


async def test_identity_cids_are_served_without_a_block(client: httpx.AsyncClient) -> None:
    identity = Cid(1, RAW, b"\x00\x05hello")
    response = await client.get(f"/ipfs/{identity}")
    assert response.status_code == 200 and response.content == b"hello"


async def test_a_listing_upload_leaves_the_members_own_pin(client: httpx.AsyncClient) -> None:
    image = await add(client, [("lamp.png", PNG)])  # pinned by the member
    response = await client.post(
        "/api/v1/listings",
        data={"listing": json.dumps(LISTING_FIELDS)},
        files=[("image", ("lamp.png", PNG, "image/png"))],
        headers=AUTH,
    )
    listing = response.json()
    pins = (await client.get("/api/v1/ipfs/pins")).json()["items"]
    owners = next(pin["owners"] for pin in pins if pin["cid"] == image)
    assert sorted(owners) == sorted([f"listing:{listing['author']}/{listing['id']}", "user"])


async def test_svg_is_not_a_listing_picture(client: httpx.AsyncClient) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    response = await client.post(
        "/api/v1/listings",
        data={"listing": json.dumps(LISTING_FIELDS)},
        files=[("image", ("x.svg", svg, "image/svg+xml"))],
        headers=AUTH,
    )
    assert response.status_code == 422
