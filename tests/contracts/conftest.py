"""anvil (npm @foundry-rs/anvil, from tests/interop's lock file) as a process on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.contracts.chains import eth_tester_world, w3, world
from tests.integration.conftest import spawn
from tests.integration.nodes import wait_until
from tests.interop.conftest import node_binary

__all__ = ["anvil_url", "eth_tester_world", "node_binary", "spawn", "w3", "world"]

ANVIL = Path(__file__).resolve().parents[1] / "interop" / "node_modules" / ".bin" / "anvil"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def anvil_url(node_binary: str) -> Iterator[str]:
    """A fresh anvil chain for one test (node_binary makes sure the npm packages are here)."""
    if not ANVIL.exists():
        message = f"{ANVIL} is missing: run ./dev.sh setup"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    process = subprocess.Popen(
        [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # npm's anvil is a Node.js wrapper around the real binary: killing the wrapper alone
        # would leave anvil running, so the whole process group is killed.
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise AssertionError(f"anvil exited: {stderr}")
        try:
            body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
            return httpx.post(url, json=body, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(answering, 20, "anvil to answer")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
