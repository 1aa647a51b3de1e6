"""The gateway app over the real services and a real SQLite store (no network)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from tests.unit.gateway.harness import AUTH, TOKEN, anonymous, client, login_cookie
from zion.gateway.security import MAX_BODY_BYTES

__all__ = ["client"]  # the fixture, used by name
LISTING = {
    "title": "Oak table",
    "description": "Solid oak, seats six",
    "price": {"amount": 25000, "currency": "EUR"},
    "category": "furniture",
    "tags": ["oak", "table"],
}


async def test_node_info(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/node")
    assert response.status_code == 200
    assert response.json()["peer_id"].startswith("12D3KooW")


async def test_listing_lifecycle(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/listings", json=LISTING, headers=AUTH)
    assert created.status_code == 201, created.text
    item = created.json()
    assert item["title"] == "Oak table" and item["seq"] == 1
    listing_id = item["id"]

    found = (await client.get("/api/v1/listings", params={"q": "oak"})).json()
    assert [i["id"] for i in found["items"]] == [listing_id]

    changed = dict(LISTING, title="Oak table, extendable")
    updated = await client.put(f"/api/v1/listings/{listing_id}", json=changed, headers=AUTH)
    assert updated.status_code == 200 and updated.json()["seq"] == 2
    assert (
        (await client.get(f"/api/v1/listings/{listing_id}")).json()["title"].endswith("extendable")
    )

    deleted = await client.delete(f"/api/v1/listings/{listing_id}", headers=AUTH)
    assert deleted.status_code == 204
    gone = await client.get(f"/api/v1/listings/{listing_id}")
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"
    assert gone.json()["code"] == "not-found"


async def test_paging(client: httpx.AsyncClient) -> None:
    for n in range(5):
        body = dict(LISTING, title=f"Chair {n}")
        assert (await client.post("/api/v1/listings", json=body, headers=AUTH)).status_code == 201
    first = (await client.get("/api/v1/listings", params={"limit": 2})).json()
    assert len(first["items"]) == 2 and first["next"]
    rest = (
        await client.get("/api/v1/listings", params={"limit": 10, "cursor": first["next"]})
    ).json()
    assert len(rest["items"]) == 3 and rest["next"] is None


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/listings", LISTING),
        ("PUT", "/api/v1/listings/x", LISTING),
        ("DELETE", "/api/v1/listings/x", None),
        ("POST", "/api/v1/channels/general/messages", {"text": "hi"}),
    ],
)
async def test_mutations_need_the_token(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    async with anonymous(client) as anon:
        for headers in ({}, {"Authorization": "Bearer wrong"}, login_cookie(client, "wrong")):
            response = await anon.request(method, path, json=body, headers=headers)
            assert response.status_code == 401
    assert (await client.get("/api/v1/listings")).json()["items"] == []


async def test_login_sets_a_strict_httponly_cookie(client: httpx.AsyncClient) -> None:
    bad = await client.get("/login", params={"token": "nope"})
    assert bad.status_code == 401
    good = await client.get("/login", params={"token": TOKEN})
    assert good.status_code == 303
    cookie = good.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    async with anonymous(client) as anon:
        created = await anon.post("/api/v1/listings", json=LISTING, headers=login_cookie(client))
    assert created.status_code == 201


async def test_foreign_host_and_origin_are_refused(client: httpx.AsyncClient) -> None:
    port = client.base_url.port
    rebinding = await client.get("/api/v1/node", headers={"Host": f"evil.example:{port}"})
    assert rebinding.status_code == 421
    cross_site = await client.post(
        "/api/v1/listings", json=LISTING, headers={**AUTH, "Origin": "http://evil.example"}
    )
    assert cross_site.status_code == 403
    same_site = await client.post(
        "/api/v1/listings", json=LISTING, headers={**AUTH, "Origin": f"http://127.0.0.1:{port}"}
    )
    assert same_site.status_code == 201


@pytest.mark.parametrize(
    ("body", "content"),
    [
        (None, b"not json"),
        (None, b"[1, 2]"),
        ({"title": "x"}, None),
        (dict(LISTING, price={"amount": -5, "currency": "EUR"}), None),
        (dict(LISTING, images=["not-a-cid"]), None),
        (dict(LISTING, expires_in_days=1000), None),
        (dict(LISTING, title="t" * 141), None),
    ],
)
async def test_bad_listings_get_problems_and_change_nothing(
    client: httpx.AsyncClient, body: Any, content: bytes | None
) -> None:
    if content is not None:
        response = await client.post("/api/v1/listings", content=content, headers=AUTH)
    else:
        response = await client.post("/api/v1/listings", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    assert (await client.get("/api/v1/listings")).json()["items"] == []


async def test_oversized_body_is_refused(client: httpx.AsyncClient) -> None:
    huge = b"{" + b" " * MAX_BODY_BYTES + b"}"
    response = await client.post("/api/v1/listings", content=huge, headers=AUTH)
    assert response.status_code == 413


async def test_price_filters_and_categories(client: httpx.AsyncClient) -> None:
    for title, amount, category in (("Lamp", 900, "lamps"), ("Desk", 30000, "furniture")):
        body = dict(
            LISTING, title=title, category=category, price={"amount": amount, "currency": "EUR"}
        )
        assert (await client.post("/api/v1/listings", json=body)).status_code == 201

    async def titles(**params: object) -> list[str]:
        response = await client.get("/api/v1/listings", params=params)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        return [item["title"] for item in response.json()["items"]]

    assert await titles(currency="EUR", max_price=1000) == ["Lamp"]
    assert await titles(currency="EUR", min_price=1000) == ["Desk"]
    assert await titles(currency="USD") == []
    no_currency = await client.get("/api/v1/listings", params={"min_price": 5})
    assert no_currency.status_code == 422 and "currency" in no_currency.json()["detail"]
    for bad in (
        {"max_price": -1},
        {"currency": "eur"},
        {"currency": "E" * 5000},
        {"currency": "EUR", "min_price": 10, "max_price": 5},
    ):
        assert (await client.get("/api/v1/listings", params=bad)).status_code == 422, bad
    categories = (await client.get("/api/v1/categories")).json()["items"]
    assert categories == [{"name": "furniture", "listings": 1}, {"name": "lamps", "listings": 1}]


async def test_bad_query_parameters(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/listings", params={"limit": "x"})).status_code == 422
    assert (await client.get("/api/v1/listings", params={"limit": 0})).status_code == 422
    assert (await client.get("/api/v1/listings", params={"cursor": "zz"})).status_code == 422


async def test_channels(client: httpx.AsyncClient) -> None:
    posted = await client.post(
        "/api/v1/channels/general/messages", json={"text": "hello"}, headers=AUTH
    )
    assert posted.status_code == 201
    reply = await client.post(
        "/api/v1/channels/general/messages",
        json={"text": "hi back", "reply_to": posted.json()["id"]},
        headers=AUTH,
    )
    assert reply.status_code == 201
    read = (await client.get("/api/v1/channels/general/messages")).json()
    assert [m["text"] for m in read["items"]] == ["hi back", "hello"]
    bad = await client.post(
        "/api/v1/channels/Not A Channel/messages", json={"text": "x"}, headers=AUTH
    )
    assert bad.status_code == 422


async def test_events_resume_after_last_event_id(client: httpx.AsyncClient) -> None:
    for n in range(3):
        body = dict(LISTING, title=f"Lamp {n}")
        await client.post("/api/v1/listings", json=body, headers=AUTH)

    async def read_events(headers: dict[str, str], want: int) -> list[tuple[str, str]]:
        seen: list[tuple[str, str]] = []
        with trio.fail_after(5):
            async with client.stream("GET", "/api/v1/events", headers=headers) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                event_id = ""
                async for line in response.aiter_lines():
                    if line.startswith("id: "):
                        event_id = line[4:]
                    elif line.startswith("event: "):
                        seen.append((event_id, line[7:]))
                        if len(seen) == want:
                            return seen
        return seen

    everything = await read_events({"Last-Event-ID": "0"}, 4)
    # The stream opens with where it starts, then the events after it.
    assert everything[0] == ("0", "ready")
    assert [kind for _, kind in everything[1:]] == ["listing.stored"] * 3
    after_first = await read_events({"Last-Event-ID": everything[1][0]}, 3)
    assert after_first == [(everything[1][0], "ready"), *everything[2:]]
    fresh = await read_events({}, 1)
    assert fresh == [(everything[-1][0], "ready")]  # from now on: it names the newest event
    for bad in ("²", "-1", "x", "9" * 30):
        response = await client.get("/api/v1/events", params={"after": bad})
        assert response.status_code == 422, bad


async def test_profile_with_wallet_link(client: httpx.AsyncClient) -> None:
    from eth_account import Account
    from eth_account.messages import encode_defunct

    from zion.protocols.records import wallet_link_message

    peer_id = (await client.get("/api/v1/node")).json()["peer_id"]
    assert (await client.get(f"/api/v1/profiles/{peer_id}")).status_code == 404
    wallet = Account.from_key(b"\x07" * 32)
    signed = wallet.sign_message(encode_defunct(text=wallet_link_message(peer_id)))
    body = {"name": "Ada", "wallet": wallet.address, "wallet_sig": signed.signature.hex()}
    response = await client.put("/api/v1/profile", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    profile = (await client.get(f"/api/v1/profiles/{peer_id}")).json()
    assert profile["name"] == "Ada" and profile["wallet"] == wallet.address
    # Every profile the node writes carries its direct-message key.
    assert len(bytes.fromhex(profile["enc_key"])) == 32

    other = Account.from_key(b"\x08" * 32)
    forged = dict(body, wallet=other.address)
    refused = await client.put("/api/v1/profile", json=forged, headers=AUTH)
    assert refused.status_code == 422
    assert (await client.get(f"/api/v1/profiles/{peer_id}")).json()["wallet"] == wallet.address


async def test_rotating_the_direct_message_key(client: httpx.AsyncClient) -> None:
    peer_id = (await client.get("/api/v1/node")).json()["peer_id"]
    no_profile = await client.post("/api/v1/profile/dm-key")
    assert no_profile.status_code == 404
    first = (await client.put("/api/v1/profile", json={"name": "Ada"})).json()
    rotated = await client.post("/api/v1/profile/dm-key")
    assert rotated.status_code == 200, rotated.text
    after = rotated.json()
    assert after["enc_key"] != first["enc_key"] and after["seq"] == first["seq"] + 1
    assert after["name"] == "Ada"
    shown = (await client.get(f"/api/v1/profiles/{peer_id}")).json()
    assert shown["enc_key"] == after["enc_key"]
