"""The Stripe bridge end to end: a buyer, a seller and a bridge, as three node processes, and
localstripe (a stateful fake Stripe) as the Stripe they use. The bridge's webhook endpoint is
its gateway; localstripe posts signed events to it."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.nodes import NodeProcess, Spawn, wait_until
from tests.integration.test_cli import zion
from zion.devtools.localstripe import (
    PUBLISHABLE_KEY,
    SECRET_KEY,
    pay_with_card,
    register_webhook,
    running_localstripe,
)

WEBHOOK_SECRET = "whsec_zion_test_0123456789abcdef"


@pytest.fixture(scope="module")
def localstripe() -> Iterator[str]:
    with running_localstripe() as url:
        yield url


def bridge_config(api_base: str, **extra: str) -> str:
    lines = "\n".join(f"{key} = {value}" for key, value in extra.items())
    return f"""
[bridge]
name = "Test payments"

[bridge.stripe]
enabled = true
api_base = "{api_base}"
publishable_key = "{PUBLISHABLE_KEY}"
currencies = ["EUR"]
terms = "Payments settle to the operator's Stripe account."
{lines}
"""


BRIDGE_ENV = {"ZION_STRIPE_SECRET_KEY": SECRET_KEY, "ZION_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """A Stripe-Signature header as Stripe computes it."""
    stamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def post_webhook(node: NodeProcess, payload: bytes, signature: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["stripe-signature"] = signature
    # Stripe has no token: the endpoint must not need one.
    return httpx.post(
        f"{node.base_url}/bridge/stripe/webhook", content=payload, headers=headers, timeout=10
    )


def order_of(node: NodeProcess, payment_intent: str) -> dict[str, Any] | None:
    response = node.api.get(f"/api/v1/payments/{payment_intent}")
    return dict(response.json()) if response.status_code == 200 else None


def receipts(node: NodeProcess) -> list[dict[str, Any]]:
    return [item for item in node.api.get("/api/v1/payments").json()["items"] if item["receipt"]]


def seller_of(spawn: Spawn, bridge: NodeProcess, name: str = "seller") -> NodeProcess:
    """A seller who takes payments through ``bridge`` ([bridges] stripe), which its profile
    says; the profile must reach buyers before they can pay."""
    config = f'[bridges]\nstripe = ["{bridge.address}"]\n'
    seller = spawn(name, bootstrap=[bridge.address], config=config)
    seller.api.put("/api/v1/profile", json={"name": "Sam"}).raise_for_status()
    return seller


def knows_payment_bridge(buyer: NodeProcess, seller: NodeProcess, bridge: NodeProcess) -> bool:
    response = buyer.api.get(f"/api/v1/profiles/{seller.peer_id}")
    return response.status_code == 200 and bridge.peer_id in response.json()["payment_bridges"]


def three_nodes(spawn: Spawn, localstripe: str) -> tuple[NodeProcess, NodeProcess, NodeProcess]:
    bridge = spawn("bridge", config=bridge_config(localstripe), env=BRIDGE_ENV)
    seller = seller_of(spawn, bridge)
    buyer = spawn("buyer", bootstrap=[bridge.address])
    register_webhook(
        localstripe,
        f"{bridge.base_url}/bridge/stripe/webhook",
        WEBHOOK_SECRET,
        ["payment_intent.succeeded", "charge.refunded"],
    )
    # The buyer learns of the bridge from its announcement and the seller's profile, not
    # from its own configuration.
    wait_until(
        lambda: any(
            b["peer_id"] == bridge.peer_id for b in buyer.api.get("/api/v1/bridges").json()["items"]
        ),
        30,
        "the bridge's announcement to reach the buyer",
    )
    wait_until(lambda: knows_payment_bridge(buyer, seller, bridge), 30, "the seller's profile")
    return buyer, seller, bridge


def test_buyer_pays_seller_through_the_bridge_and_both_see_it_paid(
    spawn: Spawn, localstripe: str
) -> None:
    buyer, seller, bridge = three_nodes(spawn, localstripe)
    listing = seller.create_listing("Walnut desk", price={"amount": 25000, "currency": "EUR"})
    wait_until(lambda: buyer.get_listing(listing["id"]), 30, "the listing to reach the buyer")

    started = zion(buyer.home, "pay", listing["id"], "--json")
    order = json.loads(started.stdout)
    assert order["status"] == "awaiting-payment"
    assert order["amount"] == 25000 and order["currency"] == "EUR"
    assert order["bridge"] == bridge.peer_id
    assert order["client_secret"].startswith(order["payment_intent"] + "_secret_")
    assert order["publishable_key"] == PUBLISHABLE_KEY

    # The bridge created it in Stripe with the listing, buyer and seller in its metadata.
    intent = httpx.get(
        f"{localstripe}/v1/payment_intents/{order['payment_intent']}",
        headers={"Authorization": f"Bearer {SECRET_KEY}"},
    ).json()
    assert intent["amount"] == 25000 and intent["currency"] == "eur"
    assert intent["metadata"] == {
        "zion_listing": listing["cid"],
        "zion_buyer": buyer.peer_id,
        "zion_seller": seller.peer_id,
    }

    assert pay_with_card(localstripe, order["payment_intent"])["status"] == "succeeded"

    def paid(node: NodeProcess) -> dict[str, Any] | None:
        found = order_of(node, order["payment_intent"])
        return found if found and found["status"] == "paid" else None

    on_buyer = wait_until(lambda: paid(buyer), 30, "the buyer to see the order paid")
    on_seller = wait_until(lambda: paid(seller), 30, "the seller to see the order paid")
    assert on_buyer["role"] == "buyer" and on_seller["role"] == "seller"
    for seen in (on_buyer, on_seller):
        assert seen["bridge"] == bridge.peer_id
        assert seen["listing"] == listing["id"] and seen["listing_cid"] == listing["cid"]
        assert seen["title"] == "Walnut desk"
        assert (seen["buyer"], seen["seller"]) == (buyer.peer_id, seller.peer_id)
        assert seen["receipt"]

    listed = zion(seller.home, "orders").stdout
    assert "paid" in listed and "seller" in listed and "250.00 EUR" in listed
    assert "Walnut desk" in listed

    # The operator refunds; the follow-up receipt reaches both.
    refunded = zion(bridge.home, "bridge", "refund", order["payment_intent"]).stdout
    assert "refunded" in refunded and "250.00 EUR" in refunded
    for node in (buyer, seller):
        wait_until(
            lambda node=node: (
                (order_of(node, order["payment_intent"]) or {}).get("status") == "refunded"
            ),
            30,
            f"{node.name} to see the refund",
        )
    # Only the bridge holding the Stripe key can refund.
    assert (
        buyer.api.post(f"/api/v1/payments/{order['payment_intent']}/refund", json={}).status_code
        == 409
    )


def test_webhooks_are_refused_unless_signed_fresh_and_new(spawn: Spawn, localstripe: str) -> None:
    buyer, seller, bridge = three_nodes(spawn, localstripe)
    listing = seller.create_listing("Lamp", price={"amount": 1500, "currency": "EUR"})
    wait_until(lambda: buyer.get_listing(listing["id"]), 30, "the listing to reach the buyer")
    order = buyer.api.post("/api/v1/payments", json={"listing": listing["id"]}).json()
    event = {
        "id": "evt_zion_test_1",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": order["payment_intent"],
                "object": "payment_intent",
                "amount": 1500,
                "currency": "eur",
                "status": "succeeded",
            }
        },
    }
    payload = json.dumps(event).encode()

    forged = post_webhook(bridge, payload, sign(payload, secret="whsec_not_the_bridges"))
    assert forged.status_code == 400 and "signature" in forged.json()["detail"]
    missing = post_webhook(bridge, payload, None)
    assert missing.status_code == 400 and "Stripe-Signature" in missing.json()["detail"]
    stale = post_webhook(bridge, payload, sign(payload, at=int(time.time()) - 3600))
    assert stale.status_code == 400 and "tolerance" in stale.json()["detail"].lower()
    tampered = post_webhook(bridge, payload.replace(b"1500", b"1"), sign(payload))
    assert tampered.status_code == 400
    assert receipts(bridge) == [] and receipts(buyer) == []

    signature = sign(payload)
    accepted = post_webhook(bridge, payload, signature)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["action"] == "receipt"
    replayed = post_webhook(bridge, payload, signature)
    assert replayed.status_code == 409 and "replayed" in replayed.json()["detail"]
    wait_until(lambda: receipts(buyer), 30, "the receipt to reach the buyer")
    assert len(receipts(bridge)) == 1
    receipt_ids = {item["receipt"] for item in receipts(bridge)}

    # Stripe's refund webhook publishes the follow-up receipt.
    refund = {
        "id": "evt_zion_test_refund",
        "object": "event",
        "type": "charge.refunded",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": "ch_zion_test",
                "object": "charge",
                "payment_intent": order["payment_intent"],
                "amount": 1500,
                "amount_refunded": 500,
            }
        },
    }
    refund_payload = json.dumps(refund).encode()
    refunded = post_webhook(bridge, refund_payload, sign(refund_payload))
    assert refunded.status_code == 200 and refunded.json()["action"] == "refund", refunded.text
    wait_until(
        lambda: (order_of(buyer, order["payment_intent"]) or {}).get("refunded") == 500,
        30,
        "the partial refund to reach the buyer",
    )
    assert order_of(buyer, order["payment_intent"])["status"] == "refunded"  # type: ignore[index]
    receipt_ids = {item["receipt"] for item in receipts(bridge)}

    # An event for a PaymentIntent the bridge did not create publishes nothing.
    other = dict(event, id="evt_zion_test_2")
    other["data"] = {"object": dict(event["data"]["object"], id="pi_notours123")}  # type: ignore[index]
    other_payload = json.dumps(other).encode()
    ignored = post_webhook(bridge, other_payload, sign(other_payload))
    assert ignored.status_code == 200 and ignored.json()["action"] == "ignored"
    assert {item["receipt"] for item in receipts(bridge)} == receipt_ids


def test_the_bridge_refuses_what_it_cannot_verify(spawn: Spawn, localstripe: str) -> None:
    """Through the API: an unknown listing and the seller's own listing. The record-level
    refusals (tampered, expired, deleted, price) are in tests/unit/node/test_stripe_bridge.py,
    where the test can send the bridge what an honest node would not."""
    bridge = spawn("bridge", config=bridge_config(localstripe), env=BRIDGE_ENV)
    seller = seller_of(spawn, bridge)
    wait_until(lambda: seller.api.get("/api/v1/bridges").json()["items"], 30, "the announcement")
    unknown = seller.api.post("/api/v1/payments", json={"listing": "no-such-listing"})
    assert unknown.status_code == 404
    own = seller.create_listing("Mine", price={"amount": 100, "currency": "EUR"})
    refused = seller.api.post("/api/v1/payments", json={"listing": own["id"]})
    assert refused.status_code == 422 and "own listing" in refused.json()["detail"]
    usd = seller.create_listing("Dollars", price={"amount": 100, "currency": "USD"})
    buyer = spawn("buyer", bootstrap=[bridge.address])
    wait_until(lambda: buyer.get_listing(usd["id"]), 30, "the listing to reach the buyer")
    wait_until(lambda: knows_payment_bridge(buyer, seller, bridge), 30, "the seller's profile")
    wrong = buyer.api.post("/api/v1/payments", json={"listing": usd["id"]})
    assert wrong.status_code == 422
    assert wrong.json()["code"] == "unsupported-currency"
    assert receipts(bridge) == []

    # A seller who names no payment bridge cannot be paid through one that merely announced
    # itself: the buyer's money goes only where the seller (or the buyer's config) says.
    stranger = spawn("stranger", bootstrap=[bridge.address])
    stranger.api.put("/api/v1/profile", json={"name": "Stranger"}).raise_for_status()
    theirs = stranger.create_listing("Vase", price={"amount": 700, "currency": "EUR"})
    wait_until(lambda: buyer.get_listing(theirs["id"]), 30, "the vase to reach the buyer")
    nowhere = buyer.api.post("/api/v1/payments", json={"listing": theirs["id"]})
    assert nowhere.status_code == 503 and nowhere.json()["code"] == "no-bridge"
    assert "names no payment bridge" in nowhere.json()["detail"]
