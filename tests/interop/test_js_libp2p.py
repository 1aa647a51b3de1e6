"""A js-libp2p node receives a Zion listing over GossipSub and checks it with third-party code.

js_listener.mjs (js-libp2p 3: tcp, noise, yamux, @libp2p/gossipsub) dials a Zion node and
subscribes to the listings topic; once the Zion node is in its mesh it prints "ready". We then
create a listing through the Zion API. The js side decodes the gossip envelope and the record
with @ipld/dag-cbor, reads the Ed25519 key out of the author's peer ID with @libp2p/peer-id,
verifies the signature with Node's crypto, and recomputes the CID with multiformats: the record
format is standard, not ours alone.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest

from tests.integration.nodes import NodeProcess

INTEROP_DIR = Path(__file__).resolve().parent

READY_TIMEOUT_S = 40.0
RESULT_TIMEOUT_S = 20.0
EXIT_TIMEOUT_S = 10.0


class LineReader:
    """stdout of a child process, line by line, with deadlines (a thread does the reading)."""

    def __init__(self, stream: IO[str], name: str = "js_listener") -> None:
        self._name = name
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)  # end of stream

    def next_line(self, deadline: float, what: str) -> str:
        remaining = deadline - time.monotonic()
        try:
            line = self._lines.get(timeout=max(remaining, 0.0))
        except queue.Empty:
            raise AssertionError(f"timed out waiting for {what}") from None
        if line is None:
            raise AssertionError(f"{self._name} exited before {what}")
        return line


def _stderr_of(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else "(none)"


@pytest.mark.interop
def test_js_libp2p_receives_and_verifies_a_listing(
    node_binary: str, zion_node: NodeProcess, tmp_path: Path
) -> None:
    info = zion_node.api.get("/api/v1/node").json()
    peer_id = info["peer_id"]
    address = next(a for a in info["addrs"] if a.startswith("/ip4/127.0.0.1/"))

    stderr_path = tmp_path / "js_listener.stderr"
    with open(stderr_path, "w") as stderr:
        js = subprocess.Popen(
            [node_binary, "--import", "./polyfill.mjs", "js_listener.mjs", address],
            cwd=INTEROP_DIR,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert js.stdout is not None
    try:
        lines = LineReader(js.stdout)
        try:
            # "ready": the Zion node is subscribed to the topic and in the js node's mesh.
            ready = lines.next_line(time.monotonic() + READY_TIMEOUT_S, '"ready"')
            assert ready == "ready", ready

            title = "Interop bike from Zion"
            created = zion_node.create_listing(
                title,
                price={"amount": 1234, "currency": "EUR"},
                description="Checked by js-libp2p, @ipld/dag-cbor and Node's Ed25519",
            )
            result_line = lines.next_line(
                time.monotonic() + RESULT_TIMEOUT_S, "the listing over gossip"
            )
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\n--- js_listener stderr:\n{_stderr_of(stderr_path)}"
                f"\n--- zion log:\n{zion_node.log_tail()}"
            ) from None
        result: dict[str, Any] = json.loads(result_line)
        assert js.wait(timeout=EXIT_TIMEOUT_S) == 0, _stderr_of(stderr_path)
    finally:
        if js.poll() is None:
            js.kill()
            js.wait(timeout=EXIT_TIMEOUT_S)
        js.stdout.close()

    assert result["cid"] == created["cid"]
    assert result["kind"] == "listing"
    assert result["subject"] == created["id"]
    assert result["title"] == title
    assert result["price"] == {"amount": 1234, "currency": "EUR"}
    assert result["author"] == peer_id
    assert result["from"] == peer_id  # the gossip publisher is the author
    assert result["sig_bytes"] == 64
    assert result["canonical"] is True  # third-party DAG-CBOR re-encodes it byte for byte
    assert result["verified"] is True
    assert result["tamper_detected"] is True
