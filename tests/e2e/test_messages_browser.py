"""Direct messages in the web UI: A messages a seller from a listing page; B's UI shows the
message with an unread mark, live; opening it clears the mark and A sees it read."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import BrowserContext, expect

from tests.e2e.harness import shot
from tests.e2e.test_ui_two_nodes import PROPAGATION_MS, PROPAGATION_S, ui
from tests.integration.nodes import NodeProcess, wait_until


def test_message_the_seller_from_a_listing(
    two_nodes: tuple[NodeProcess, NodeProcess], new_context: Callable[[], BrowserContext]
) -> None:
    a, b = two_nodes
    for node, name in ((a, "Alice"), (b, "Bob")):
        node.api.put("/api/v1/profile", json={"name": name}).raise_for_status()
    listing = b.create_listing("Walnut bookshelf")

    def a_knows_bob() -> bool:
        response = a.api.get(f"/api/v1/profiles/{b.peer_id}")
        return response.status_code == 200 and response.json()["enc_key"] is not None

    wait_until(a_knows_bob, PROPAGATION_S, "A to know Bob's key and listing")
    wait_until(lambda: listing["id"] in a.listing_ids(), PROPAGATION_S, "A to have the listing")

    page_a, page_b = ui(new_context, a), ui(new_context, b)
    unread_b = page_b.locator("#unread")
    expect(unread_b).to_be_hidden()

    page_a.goto(f"{a.base_url}/#/listing/{listing['id']}")
    page_a.get_by_role("link", name="Message seller").click()
    expect(page_a.get_by_role("heading", name="Message Bob")).to_be_visible()
    page_a.get_by_label("Message").fill("Is the bookshelf still available?")
    page_a.get_by_role("button", name="Send").click()
    sent = page_a.locator("#thread li.mine")
    expect(sent).to_contain_text("Is the bookshelf still available?")
    expect(sent).to_have_attribute("data-status", "delivered")
    shot(page_a, "messages-sent")

    # B, on the market page, sees the unread mark arrive without a reload.
    expect(unread_b).to_have_text("1", timeout=PROPAGATION_MS)
    page_b.get_by_role("link", name="Messages").click()
    conversation = page_b.locator("#conversations li").first
    expect(conversation).to_contain_text("Alice")
    expect(conversation.locator(".badge")).to_have_text("1")
    shot(page_b, "messages-unread")
    conversation.get_by_role("link").click()
    expect(page_b.locator("#thread li.theirs")).to_contain_text("Is the bookshelf still available?")
    expect(page_b.locator("#thread li.theirs .about")).to_be_visible()  # about the listing
    expect(unread_b).to_be_hidden()

    # Reading it sends a read receipt: A's page shows it read, live.
    expect(sent).to_have_attribute("data-status", "read", timeout=PROPAGATION_MS)
    page_b.get_by_label("Message").fill("Yes, come by on Saturday.")
    page_b.get_by_role("button", name="Send").click()
    expect(page_a.locator("#thread li.theirs")).to_contain_text(
        "Yes, come by on Saturday.", timeout=PROPAGATION_MS
    )
    shot(page_a, "messages-thread")
