"""Several real nodes, each its own process, on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx

from tests.integration.nodes import NodeProcess, wait_until

Spawn = Callable[..., NodeProcess]


def test_listing_reaches_every_node_within_5_seconds(spawn: Spawn) -> None:
    a = spawn("a")
    b = spawn("b", bootstrap=[a.address])
    c = spawn("c", bootstrap=[a.address])
    wait_until(lambda: b.connected_to(a.peer_id) and c.connected_to(a.peer_id), 15, "connections")

    item = a.create_listing("Vintage lamp", description="brass, 1960s", tags=["lamp"])
    started = time.monotonic()
    for node in (b, c):
        remaining = 5 - (time.monotonic() - started)
        served = wait_until(
            lambda n=node: n.get_listing(item["id"]), remaining, f"listing on {node.name}"
        )
        assert served["title"] == "Vintage lamp"
        assert served["cid"] == item["cid"]
    found = b.api.get("/api/v1/listings", params={"q": "brass"}).json()["items"]
    assert [i["id"] for i in found] == [item["id"]]


def test_restarted_node_catches_up_200_listings_within_10_seconds(spawn: Spawn) -> None:
    a = spawn("a")
    c = spawn("c", bootstrap=[a.address])
    wait_until(lambda: c.connected_to(a.peer_id), 15, "c connected")
    assert c.stop() == 0

    created = {a.create_listing(f"Item {n}")["id"] for n in range(200)}
    assert created <= a.listing_ids()

    c.start(bootstrap=[a.address])
    started = time.monotonic()
    wait_until(lambda: created <= c.listing_ids(), 10, "c to have all 200 listings")
    print(f"caught up 200 listings in {time.monotonic() - started:.2f}s")


def test_fresh_node_receives_everything_ever_published(spawn: Spawn) -> None:
    a = spawn("a")
    b = spawn("b", bootstrap=[a.address])
    wait_until(lambda: b.connected_to(a.peer_id), 15, "b connected")
    listings = {a.create_listing(f"From A {n}")["id"] for n in range(30)}
    listings |= {b.create_listing(f"From B {n}")["id"] for n in range(30)}
    messages = set()
    for n in range(20):
        node = a if n % 2 else b
        response = node.api.post("/api/v1/channels/general/messages", json={"text": f"msg {n}"})
        assert response.status_code == 201
        messages.add(response.json()["id"])
    wait_until(lambda: listings <= a.listing_ids(), 10, "a to have b's listings")
    wait_until(lambda: messages <= a.message_ids("general"), 10, "a to have all messages")

    d = spawn("d", bootstrap=[a.address])
    wait_until(lambda: listings <= d.listing_ids(), 10, "d to have every listing")
    wait_until(lambda: messages <= d.message_ids("general"), 10, "d to have every message")
    assert d.listing_ids() == a.listing_ids()


def test_update_and_delete_converge_everywhere(spawn: Spawn) -> None:
    a = spawn("a")
    b = spawn("b", bootstrap=[a.address])
    c = spawn("c", bootstrap=[a.address])
    wait_until(lambda: b.connected_to(a.peer_id) and c.connected_to(a.peer_id), 15, "connections")
    keep = a.create_listing("Desk")
    gone = a.create_listing("Chair")
    # c misses the update and the delete, and gets them later by sync.
    assert c.stop() == 0
    body = {"title": "Desk, oak", "price": {"amount": 900, "currency": "EUR"}, "category": "test"}
    assert a.api.put(f"/api/v1/listings/{keep['id']}", json=body).status_code == 200
    assert a.api.delete(f"/api/v1/listings/{gone['id']}").status_code == 204
    c.start(bootstrap=[a.address])
    for node in (b, c):
        wait_until(
            lambda n=node: (n.get_listing(keep["id"]) or {}).get("seq") == 2,
            10,
            f"update on {node.name}",
        )
        wait_until(lambda n=node: n.get_listing(gone["id"]) is None, 10, f"delete on {node.name}")
        assert node.get_listing(keep["id"])["title"] == "Desk, oak"  # type: ignore[index]


def test_nothing_acknowledged_is_lost_on_sigkill(spawn: Spawn) -> None:
    a = spawn("a")
    acknowledged: list[str] = []
    stop = threading.Event()
    url = a.base_url
    token = (a.home / "api_token").read_text().strip()

    def burst() -> None:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=5
        ) as http:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    response = http.post(
                        "/api/v1/listings",
                        json={
                            "title": f"Burst {n}",
                            "price": {"amount": n, "currency": "EUR"},
                            "category": "test",
                        },
                    )
                except httpx.HTTPError:
                    return
                if response.status_code == 201:
                    acknowledged.append(response.json()["id"])

    writers = [threading.Thread(target=burst) for _ in range(4)]
    for writer in writers:
        writer.start()
    wait_until(lambda: len(acknowledged) >= 100, 30, "100 acknowledged publishes")
    a.kill()
    stop.set()
    for writer in writers:
        writer.join(timeout=10)
    a.start()
    present = a.listing_ids()
    missing = [i for i in acknowledged if i not in present]
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged listings lost"
