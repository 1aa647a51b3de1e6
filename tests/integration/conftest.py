from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.nodes import NodeProcess


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., NodeProcess]]:
    """Start named nodes; every one still running is killed at the end of the test."""
    nodes: list[NodeProcess] = []

    def start(
        name: str, bootstrap: list[str] | None = None, extra: list[str] | None = None
    ) -> NodeProcess:
        node = NodeProcess(tmp_path / name, name)
        nodes.append(node)
        return node.start(bootstrap=bootstrap, extra=extra)

    yield start
    for node in nodes:
        if node.process is not None and node.process.poll() is None:
            node.kill()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.slow)
