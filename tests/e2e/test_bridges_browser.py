"""Bridges in the web UI, against a bridge node running both bridges (localstripe as Stripe, the
local OpenAI-compatible test server as the AI): the buyer buys from a listing page and sees it
paid, live; the seller's orders page shows the sale; a listing is drafted by the AI bridge,
streamed into the form with its source named; similar listings say how they were ranked."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.e2e.harness import shot
from tests.e2e.test_ui_two_nodes import PROPAGATION_MS, PROPAGATION_S, ui
from tests.integration.nodes import NodeProcess, Spawn, wait_until
from tests.integration.test_bridges_stripe import (
    BRIDGE_ENV,
    WEBHOOK_SECRET,
    bridge_config,
    knows_payment_bridge,
    seller_of,
)
from zion.devtools.ai_server import running_ai_server
from zion.devtools.localstripe import pay_with_card, register_webhook, running_localstripe

AI_KEY = "sk-zion-browser-test"


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[str, str]]:
    with running_localstripe() as stripe_url, running_ai_server(AI_KEY) as ai_url:
        yield stripe_url, ai_url


def bridge_node(spawn: Spawn, stripe_url: str, ai_url: str) -> NodeProcess:
    config = (
        bridge_config(stripe_url)
        + f"""
[bridge.ai]
enabled = true
base_url = "{ai_url}"
model = "test-chat"
embedding_model = "test-embed"
"""
    )
    bridge = spawn("bridge", config=config, env={**BRIDGE_ENV, "ZION_AI_API_KEY": AI_KEY})
    register_webhook(
        stripe_url,
        f"{bridge.base_url}/bridge/stripe/webhook",
        WEBHOOK_SECRET,
        ["payment_intent.succeeded"],
    )
    return bridge


def test_buy_a_listing_and_draft_one_in_the_browser(
    spawn: Spawn,
    services: tuple[str, str],
    new_context: Callable[[], BrowserContext],
) -> None:
    stripe_url, ai_url = services
    bridge = bridge_node(spawn, stripe_url, ai_url)
    seller = seller_of(spawn, bridge)
    buyer = spawn(
        "buyer", bootstrap=[bridge.address], config=f'[bridges]\nai = ["{bridge.address}"]\n'
    )
    desk = seller.create_listing(
        "Walnut desk", price={"amount": 25000, "currency": "EUR"}, category="furniture"
    )
    seller.create_listing(
        "Walnut shelf", price={"amount": 9000, "currency": "EUR"}, category="furniture"
    )
    for node in (buyer, seller):
        wait_until(
            lambda node=node: node.api.get("/api/v1/bridges").json()["items"],
            PROPAGATION_S,
            f"{node.name} to hear of the bridge",
        )
    wait_until(lambda: buyer.get_listing(desk["id"]), PROPAGATION_S, "the desk to reach the buyer")
    wait_until(
        lambda: knows_payment_bridge(buyer, seller, bridge), PROPAGATION_S, "the seller's profile"
    )

    page_buyer, page_seller = ui(new_context, buyer), ui(new_context, seller)
    page_buyer.goto(f"{buyer.base_url}/#/listing/{desk['id']}")
    similar = page_buyer.locator(".similar")
    expect(similar).to_contain_text("Walnut shelf")
    expect(similar.locator(".source")).to_have_attribute("data-source", "embeddings")

    buy = page_buyer.locator("section.buy")
    expect(buy).to_contain_text("Test payments")
    buy.get_by_role("button", name="Buy for 250.00 EUR").click()
    state = buy.locator(".order-state")
    expect(state.locator("[data-status]")).to_have_attribute("data-status", "awaiting-payment")
    payment_intent = state.locator(".mono").inner_text().split()[-1]
    assert payment_intent.startswith("pi_")
    expect(state.locator("code.secret")).to_contain_text(f"{payment_intent}_secret_")
    shot(page_buyer, "bridges-buy-started")

    # The card holder confirms with Stripe (the test stands in for Stripe.js, see pay_with_card).
    pay_with_card(stripe_url, payment_intent)
    expect(state.locator("[data-status]")).to_have_attribute(
        "data-status", "paid", timeout=PROPAGATION_MS
    )
    shot(page_buyer, "bridges-paid")

    page_seller.goto(f"{seller.base_url}/#/orders")
    order = page_seller.locator(f"li[data-payment='{payment_intent}']")
    expect(order).to_contain_text("Sold", timeout=PROPAGATION_MS)
    expect(order.locator("[data-status]")).to_have_attribute("data-status", "paid")
    expect(order).to_contain_text("Walnut desk")
    shot(page_seller, "bridges-orders")

    # Drafting: the notes go to the AI bridge, the answer streams into the form.
    page_seller.goto(f"{seller.base_url}/#/new")
    page_seller.get_by_text("Draft with AI").click()
    page_seller.get_by_label("Notes").fill("brass lamp with green shade, works fine")
    page_seller.get_by_role("button", name="Draft", exact=True).click()
    expect(page_seller.locator(".assist .source")).to_contain_text("Test payments")
    # The draft (made of the notes' words by the test server) fills both fields.
    expect(page_seller.get_by_label("Description")).to_have_value(re.compile("green shade"))
    expect(page_seller.get_by_label("Title")).to_have_value(re.compile("lamp", re.IGNORECASE))
    shot(page_seller, "bridges-draft")

    # The node page lists the bridges this node knows, with their terms.
    page_buyer.goto(f"{buyer.base_url}/#/node")
    known = page_buyer.locator("#bridges")
    expect(known).to_contain_text("Test payments")
    expect(known).to_contain_text("in your config")  # the buyer names it for AI
    expect(known).to_contain_text("Payments settle to the operator's Stripe account.")
