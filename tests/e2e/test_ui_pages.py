"""The web UI's other pages in headless Chromium: empty states, the node page and profile
editing, a seller's page, keyboard use and a phone-sized screen, the API reference, and
`zion open`."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, Route, expect

from tests.e2e.harness import login, shot, wait_for
from tests.e2e.test_ui_two_nodes import PROPAGATION_MS, png, ui
from tests.integration.nodes import NodeProcess

PHONE = {"width": 390, "height": 844}


def test_empty_states_node_page_and_reference(node: NodeProcess, page: Page) -> None:
    page.set_viewport_size({"width": 1200, "height": 860})
    login(page, node)
    expect(page.get_by_text("No listings yet")).to_be_visible()

    page.goto(f"{node.base_url}/#/dao")
    expect(page.get_by_text("No chain configured")).to_be_visible()
    shot(page, "dao-no-chain")

    page.goto(f"{node.base_url}/#/node")
    expect(page.locator("#peer-id")).to_have_text(node.peer_id)
    expect(page.get_by_text("No peers yet")).to_be_visible()
    expect(page.get_by_text("Nothing pinned")).to_be_visible()
    shot(page, "node")

    page.goto(f"{node.base_url}/#/nowhere")
    expect(page.get_by_text("No such page")).to_be_visible()

    page.get_by_role("link", name="API reference").click()
    expect(page.get_by_text("/api/v1/listings").first).to_be_visible()
    shot(page, "api-reference")


def test_profile_editing_and_the_sellers_page(
    two_nodes: tuple[NodeProcess, NodeProcess],
    new_context: Callable[[], BrowserContext],
    tmp_path: Path,
) -> None:
    a, b = two_nodes
    page_a, page_b = ui(new_context, a), ui(new_context, b)
    avatar = tmp_path / "me.png"
    avatar.write_bytes(png(96, 96, (40, 120, 200)))

    page_a.goto(f"{a.base_url}/#/node")
    form = page_a.locator("#profile-form")
    form.get_by_label("Name").fill("Alice Oak")
    form.get_by_label("Avatar image").set_input_files(str(avatar))
    form.get_by_role("button", name="Save profile").click()
    expect(page_a.locator("#profile-form img.avatar")).to_be_visible()
    expect(page_a.locator("#profile-form").get_by_label("Name")).to_have_value("Alice Oak")
    listing = a.create_listing("Walnut bookshelf")

    page_b.goto(f"{b.base_url}/#/listing/{listing['id']}")
    seller = page_b.get_by_role("link", name="Alice Oak")
    expect(seller).to_be_visible(timeout=PROPAGATION_MS)
    seller.click()
    expect(page_b.get_by_role("heading", name="Alice Oak")).to_be_visible()
    expect(page_b.locator(f'.listing-link[data-id="{listing["id"]}"]')).to_be_visible()
    page_b.wait_for_function(
        "() => { const img = document.querySelector('img.avatar');"
        " return img && img.complete && img.naturalWidth === 96; }",
        timeout=PROPAGATION_MS,
    )
    shot(page_b, "profile")


def no_sideways_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_keyboard_only_on_a_phone_sized_screen(node: NodeProcess, page: Page) -> None:
    page.set_viewport_size(PHONE)
    login(page, node)
    expect(page.get_by_text("No listings yet")).to_be_visible()
    assert no_sideways_scroll(page)

    # After a page opens the focus is on its content: Tab reaches its first control, and
    # Shift+Tab walks back through the navigation to the skip link, which jumps back.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "New listing"
    backwards = []
    for _ in range(8):
        page.keyboard.press("Shift+Tab")
        backwards.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert backwards == [
        "Node", "DAO", "Orders", "Messages", "Channels", "Market", "Zion", "Skip to content"
    ]  # fmt: skip
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    expect(page.get_by_text("No listings yet")).to_be_visible()

    # A listing made with the keyboard alone: the title has focus when the form opens.
    page.goto(f"{node.base_url}/#/new")
    expect(page.get_by_label("Title")).to_be_focused()
    assert no_sideways_scroll(page)
    for text in ("Brass desk lamp", "Works, with a new cable", "35"):
        page.keyboard.type(text)
        page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # the currency keeps its default, EUR
    page.keyboard.type("lamps")
    page.keyboard.press("Enter")  # submits the form
    expect(page.get_by_role("heading", name="Brass desk lamp")).to_be_visible()
    expect(page.locator(".price.big")).to_have_text("35.00 EUR")
    assert no_sideways_scroll(page)
    shot(page, "phone-listing")

    pages = {"#/": "Newest listings", "#/channels/general": "#general", "#/node": "This node",
             "#/dao": "DAO"}  # fmt: skip
    for route, heading in pages.items():
        page.goto(f"{node.base_url}/{route}")
        expect(page.locator("main h1").first).to_have_text(heading)
        assert no_sideways_scroll(page), route
    shot(page, "phone-dao")


def test_zion_open_logs_the_browser_in(node: NodeProcess, page: Page, tmp_path: Path) -> None:
    """`zion open` hands the browser a private redirect file, never the token on a command
    line; following it lands on the UI, logged in."""
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "fake-browser"
    browser.write_text(f'#!/bin/sh\nprintf %s "$1" > {opened}\n')
    browser.chmod(0o755)
    env = dict(os.environ, BROWSER=str(browser))
    command = [sys.executable, "-m", "zion", "--home", str(node.home), "open"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    url = opened.read_text()
    assert url.startswith("file://") and node.token not in url
    redirect = Path(url.removeprefix("file://"))
    assert stat.S_IMODE(redirect.stat().st_mode) == 0o600

    page.goto(url)
    page.wait_for_url(f"{node.base_url}/")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    expect(page.get_by_text("No listings yet")).to_be_visible()

    printed = subprocess.run(
        [*command, "--print"], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    assert printed == f"{node.base_url}/login?token={node.token}"


def test_a_slow_page_does_not_draw_over_the_next(node: NodeProcess, page: Page) -> None:
    """The member leaves a page before it has loaded: what they went to stays on screen."""
    login(page, node)
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    page.route("**/api/v1/dao", hold)
    page.goto(f"{node.base_url}/#/dao")
    wait_for(page, lambda: held, 10, "the DAO page to ask for the DAO")
    page.goto(f"{node.base_url}/#/node")
    expect(page.locator("main h1")).to_have_text("This node")
    with page.expect_response("**/api/v1/dao"):
        held[0].continue_()
    page.unroute("**/api/v1/dao", hold)
    # Let the page's handlers for that answer run (a task after the response), then look.
    page.evaluate("() => new Promise((done) => setTimeout(done, 0))")
    expect(page.locator("main h1")).to_have_text("This node")
    expect(page.get_by_text("No chain configured")).to_have_count(0)


def test_live_updates_keep_what_the_member_is_typing(node: NodeProcess, page: Page) -> None:
    login(page, node)
    page.goto(f"{node.base_url}/#/node")
    name = page.locator("#profile-form").get_by_label("Name")
    name.fill("Half-typed nam")
    node.api.post("/api/v1/channels/general/messages", json={"text": "hi"}).raise_for_status()
    # The page refreshes its counters from the event; the form is left alone.
    expect(page.locator("dt:text-is('Messages') + dd")).to_have_text("1", timeout=10_000)
    expect(name).to_have_value("Half-typed nam")
    expect(name).to_be_focused()


def test_load_more_is_not_undone_by_news(node: NodeProcess, page: Page) -> None:
    for n in range(30):
        node.create_listing(f"Item {n:02}")
    login(page, node)
    cards = page.locator(".listing-card")
    expect(cards).to_have_count(24)
    page.get_by_role("button", name="Load more").click()
    expect(cards).to_have_count(30)
    node.create_listing("Fresh item")
    news = page.get_by_role("button", name="New listings arrived: show them")
    expect(news).to_be_visible()
    expect(cards).to_have_count(30)
    news.click()
    expect(cards).to_have_count(24)
    expect(cards.first).to_contain_text("Fresh item")
