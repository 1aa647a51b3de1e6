from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.nodes import Spawn, spawned_nodes


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start named nodes; every one still running is killed at the end of the test."""
    with spawned_nodes(tmp_path) as start:
        yield start


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.slow)
