"""Fixtures for the js-libp2p interop tests: a Zion node process and a Node.js toolchain."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.integration.nodes import NodeProcess

INTEROP_DIR = Path(__file__).resolve().parent
NPM_CI_TIMEOUT_S = 300


def _installed_matches_lock() -> bool:
    """node_modules holds exactly what package-lock.json pins (npm's hidden lock file says).

    Optional packages for other platforms (prebuilt native modules) are in the lock but never
    installed here: only what is installed must match, and nothing required may be missing.
    """
    hidden = INTEROP_DIR / "node_modules" / ".package-lock.json"
    if not hidden.is_file():
        return False
    wanted = json.loads((INTEROP_DIR / "package-lock.json").read_text())["packages"]
    wanted.pop("", None)  # the root package: only in the committed lock file
    installed = json.loads(hidden.read_text())["packages"]
    if any(wanted.get(name) != entry for name, entry in installed.items()):
        return False
    return all(name in installed for name, entry in wanted.items() if not entry.get("optional"))


def _unavailable(reason: str) -> NoReturn:
    """Skip on a developer's machine; in CI (CI=true) a missing toolchain is a failure."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def node_binary() -> str:
    """The `node` executable with this folder's npm packages installed; skip if impossible."""
    node = shutil.which("node")
    if node is None:
        _unavailable("Node.js is not installed (`node` is not on PATH); ./dev.sh setup installs it")
    if not _installed_matches_lock():
        npm = shutil.which("npm")
        if npm is None:
            _unavailable("tests/interop/node_modules is missing and `npm` is not on PATH")
        try:
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=INTEROP_DIR,
                capture_output=True,
                text=True,
                timeout=NPM_CI_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            _unavailable(f"`npm ci` in tests/interop took over {NPM_CI_TIMEOUT_S}s")
        if result.returncode != 0 or not (INTEROP_DIR / "node_modules").is_dir():
            _unavailable(f"cannot install tests/interop/node_modules (npm ci):\n{result.stderr}")
    return node


@pytest.fixture
def zion_node(tmp_path: Path) -> Iterator[NodeProcess]:
    """One Zion node as a separate process; killed at the end of the test."""
    node = NodeProcess(tmp_path / "zion", "zion")
    try:
        yield node.start()
    finally:
        if node.process is not None and node.process.poll() is None:
            node.kill()
