"""End-to-end fixtures: real node processes on 127.0.0.1 and headless Debian Chromium.

Every test under tests/e2e is marked ``browser`` and ``slow``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.e2e.harness import DEFAULT_TIMEOUT_MS, launch
from tests.integration.nodes import NodeProcess, Spawn, spawned_nodes, wait_until

HERE = Path(__file__).parent
CONNECT_TIMEOUT_S = 15.0


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[[], BrowserContext]]:
    """Make a fresh browser context (its own cookies); all are closed after the test."""
    contexts: list[BrowserContext] = []

    def make() -> BrowserContext:
        context = browser.new_context()
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def context(new_context: Callable[[], BrowserContext]) -> BrowserContext:
    return new_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """``spawn(name, bootstrap=None, extra=None)`` starts a node; all are killed after the test."""
    with spawned_nodes(tmp_path) as start:
        yield start


@pytest.fixture
def node(spawn: Spawn) -> NodeProcess:
    """One running node, no peers."""
    return spawn("a")


@pytest.fixture
def two_nodes(spawn: Spawn) -> tuple[NodeProcess, NodeProcess]:
    """Nodes ``a`` and ``b`` (b bootstrapped from a), connected both ways."""
    a = spawn("a")
    b = spawn("b", bootstrap=[a.address])
    wait_until(
        lambda: b.connected_to(a.peer_id) and a.connected_to(b.peer_id),
        CONNECT_TIMEOUT_S,
        "a and b to connect",
    )
    return a, b


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)
