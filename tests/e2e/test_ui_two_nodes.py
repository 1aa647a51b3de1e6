"""The web UI with two real nodes in headless Chromium: a listing made on A's UI (image
included) reaches B's UI without a reload, search and filters find it, edits and deletion
follow it live, channel messages arrive live, and the event stream survives a dropped
connection without losing events."""

from __future__ import annotations

import socket
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

from tests.e2e.harness import login, shot, wait_for
from tests.integration.nodes import NodeProcess, Spawn, wait_until

PROPAGATION_S = 20.0
PROPAGATION_MS = int(PROPAGATION_S * 1000)


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG, so the browser has something to decode."""
    row = b"\x00" + bytes(rgb) * width
    raw = row * height

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def ui(new_context: Callable[[], BrowserContext], node: NodeProcess) -> Page:
    """A logged-in page on ``node``'s UI, in a browser context of its own."""
    page = new_context().new_page()
    page.set_viewport_size({"width": 1200, "height": 860})
    login(page, node)
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    return page


def mark_no_reload(page: Page) -> None:
    page.evaluate("window.__stillThisPage = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__stillThisPage === true"), "the page was reloaded"


def image_shown(page: Page, selector: str) -> None:
    page.wait_for_function(
        f"() => {{ const img = document.querySelector({selector!r});"
        " return img && img.complete && img.naturalWidth > 0; }",
        timeout=PROPAGATION_MS,
    )


def test_listing_lifecycle_across_two_nodes(
    two_nodes: tuple[NodeProcess, NodeProcess],
    new_context: Callable[[], BrowserContext],
    tmp_path: Path,
) -> None:
    a, b = two_nodes
    page_a, page_b = ui(new_context, a), ui(new_context, b)
    expect(page_b.get_by_text("No listings yet")).to_be_visible()
    shot(page_b, "market-empty")
    mark_no_reload(page_b)

    # A creates a listing with an image, through the form.
    picture = tmp_path / "table.png"
    picture.write_bytes(png(320, 240, (160, 110, 60)))
    page_a.get_by_role("link", name="New listing").click()
    page_a.get_by_label("Title").fill("Solid oak dining table")
    page_a.get_by_label("Description").fill("Seats six. Collect from Ghent.")
    page_a.get_by_label("Price").fill("250")
    page_a.get_by_label("Currency").fill("EUR")
    page_a.get_by_label("Category").fill("furniture")
    page_a.get_by_label("Tags (comma separated)").fill("oak, table")
    page_a.get_by_label("Images").set_input_files(str(picture))
    shot(page_a, "listing-new")
    page_a.get_by_role("button", name="Publish listing").click()
    expect(page_a.get_by_role("heading", name="Solid oak dining table")).to_be_visible()
    image_shown(page_a, ".gallery img")
    listing_id = page_a.locator("article.listing").get_attribute("data-id")
    assert listing_id
    shot(page_a, "listing-page")

    # B's market shows it without a reload, image included (fetched from A over Bitswap).
    card = page_b.locator(f'.listing-link[data-id="{listing_id}"]')
    expect(card).to_be_visible(timeout=PROPAGATION_MS)
    expect(card).to_contain_text("250.00 EUR")
    image_shown(page_b, f'.listing-link[data-id="{listing_id}"] img')
    assert_not_reloaded(page_b)
    shot(page_b, "market")

    # Search and filters on B.
    page_b.get_by_label("Search").fill("oak")
    page_b.get_by_role("button", name="Search").click()
    expect(page_b.locator(f'.listing-link[data-id="{listing_id}"]')).to_be_visible()
    shot(page_b, "search")
    page_b.get_by_label("Max price").fill("100")
    page_b.get_by_role("button", name="Search").click()
    expect(page_b.get_by_text("Nothing matches")).to_be_visible()
    page_b.get_by_label("Max price").fill("300")
    page_b.get_by_label("Category").select_option("furniture")
    page_b.get_by_role("button", name="Search").click()
    expect(page_b.locator(f'.listing-link[data-id="{listing_id}"]')).to_be_visible()

    # B follows the listing page while A edits, then deletes it.
    page_b.locator(f'.listing-link[data-id="{listing_id}"]').click()
    expect(page_b.get_by_role("heading", name="Solid oak dining table")).to_be_visible()
    mark_no_reload(page_b)
    expires = a.api.get(f"/api/v1/listings/{listing_id}").json()["expires"]
    second = tmp_path / "leaf.png"
    second.write_bytes(png(200, 150, (90, 60, 30)))
    page_a.get_by_role("link", name="Edit").click()
    page_a.get_by_label("Title").fill("Solid oak dining table, extendable")
    page_a.get_by_label("Price").fill("275")
    page_a.get_by_label("Add images").set_input_files(str(second))
    page_a.get_by_role("button", name="Save changes").click()
    expect(page_a.get_by_role("heading", name="Solid oak dining table, extendable")).to_be_visible()
    expect(page_b.get_by_role("heading", name="Solid oak dining table, extendable")).to_be_visible(
        timeout=PROPAGATION_MS
    )
    expect(page_b.locator(".price.big")).to_have_text("275.00 EUR")
    # The edit kept the first image, added the second, and did not move the expiry.
    expect(page_b.locator(".gallery img")).to_have_count(2)
    for n in (1, 2):
        image_shown(page_b, f".gallery a:nth-child({n}) img")
    assert a.api.get(f"/api/v1/listings/{listing_id}").json()["expires"] == expires
    assert_not_reloaded(page_b)

    page_a.once("dialog", lambda dialog: dialog.accept())
    page_a.get_by_role("button", name="Delete").click()
    expect(page_a.get_by_role("heading", name="Newest listings")).to_be_visible()
    expect(page_b.get_by_text("This listing is gone")).to_be_visible(timeout=PROPAGATION_MS)
    assert_not_reloaded(page_b)
    wait_until(lambda: listing_id not in b.listing_ids(), PROPAGATION_S, "B to drop the listing")


def test_channel_messages_arrive_live(
    two_nodes: tuple[NodeProcess, NodeProcess], new_context: Callable[[], BrowserContext]
) -> None:
    a, b = two_nodes
    page_a, page_b = ui(new_context, a), ui(new_context, b)
    page_a.goto(f"{a.base_url}/#/channels/general")
    expect(page_a.get_by_text("No messages in #general yet")).to_be_visible()
    mark_no_reload(page_a)

    page_b.goto(f"{b.base_url}/#/channels/general")
    page_b.get_by_label("Message").fill("Is the oak table still available?")
    page_b.get_by_role("button", name="Send").click()
    expect(page_b.locator("#messages li")).to_have_count(1)

    expect(page_a.locator("#messages li")).to_contain_text(
        ["Is the oak table still available?"], timeout=PROPAGATION_MS
    )
    assert_not_reloaded(page_a)
    page_a.get_by_label("Message").fill("Yes, come by on Saturday.")
    page_a.keyboard.press("Enter")  # keyboard only
    expect(page_b.locator("#messages li")).to_have_count(2, timeout=PROPAGATION_MS)
    expect(page_b.locator("#messages li").last).to_contain_text("Yes, come by on Saturday.")
    shot(page_a, "channel")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("seen_before", [True, False], ids=["after-an-event", "before-any-event"])
def test_live_updates_survive_a_dropped_connection(
    spawn: Spawn, new_context: Callable[[], BrowserContext], seen_before: bool
) -> None:
    """A's node goes down under its open UI while B posts; when A is back (same gateway
    address), the page's event stream reconnects after the last event it saw (or where its
    stream began, if it saw none) and every message shows up, in order, without a reload."""
    b = spawn("b")
    gateway = ["--gateway", f"127.0.0.1:{free_port()}"]
    a = spawn("a", bootstrap=[b.address], extra=gateway)
    page_a = ui(new_context, a)
    page_a.goto(f"{a.base_url}/#/channels/market")
    shown: list[str] = []
    if seen_before:
        shown.append("posted while A was up")
        b.api.post("/api/v1/channels/market/messages", json={"text": shown[0]}).raise_for_status()
        expect(page_a.locator("#messages li p")).to_have_text(shown, timeout=PROPAGATION_MS)
    else:
        expect(page_a.get_by_text("No messages in #market yet")).to_be_visible()
    mark_no_reload(page_a)

    # The page's reconnection is held back until A has stored everything B posted, so the
    # messages can only reach the page by the stream's replay after its last event.
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    page_a.route("**/api/v1/events*", hold)
    a.stop()
    expect(page_a.locator("#live")).not_to_have_attribute("data-state", "live")
    texts = [f"posted while A was down {n}" for n in range(5)]
    for text in texts:
        b.api.post("/api/v1/channels/market/messages", json={"text": text}).raise_for_status()
    a.start(bootstrap=[b.address], extra=gateway)  # catches up from B by sync
    wait_until(
        lambda: len(a.message_ids("market")) == len(shown) + len(texts),
        PROPAGATION_S,
        "A to catch up",
    )
    wait_for(page_a, lambda: held, PROPAGATION_S, "the page to try to reconnect")
    assert "after=" in held[-1].request.url, "the reconnection does not say where to resume"
    held[-1].continue_()
    page_a.unroute("**/api/v1/events*", hold)

    expect(page_a.locator("#live")).to_have_attribute("data-state", "live", timeout=PROPAGATION_MS)
    expect(page_a.locator("#messages li p")).to_have_text([*shown, *texts], timeout=PROPAGATION_MS)
    assert_not_reloaded(page_a)
