"""The API reference page renders every operation of the node's OpenAPI document."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.e2e.harness import login
from tests.integration.nodes import NodeProcess
from tests.unit.gateway.test_openapi import operations


def test_the_reference_page_renders_every_operation(node: NodeProcess, page: Page) -> None:
    document = node.api.get("/api/v1/openapi.json").json()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, node)
    page.goto(f"{node.base_url}/ui/api-docs.html")
    page.wait_for_selector("details.operation")
    create = page.locator("#op-post_api_v1_listings")
    create.locator("summary").click()
    assert errors == []
    assert page.locator("details.operation").count() == sum(1 for _ in operations(document))
    tags = page.eval_on_selector_all(
        "section.api-tag", "sections => sections.map(s => s.id.slice('tag-'.length))"
    )
    assert tags == [tag["name"] for tag in document["tags"]]
    text = create.inner_text()
    assert "title" in text and "413" in text
