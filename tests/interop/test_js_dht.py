"""A js-libp2p node uses a Zion seed to bootstrap and discovers another Zion node through the DHT.

js_dht_discover.mjs (js-libp2p 3 with @libp2p/kad-dht as a client on /ipfs/kad/1.0.0) is
given the seed's multiaddr and nothing else. It computes the rendezvous CID itself (go-libp2p's
routing-discovery convention), asks the DHT for its providers until a peer besides the seed
appears, resolves that peer with findPeer, dials it at the addresses the DHT gave and reads
its identify protocols. The member is never named to it: it must come out of the seed's DHT.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.nodes import Spawn, spawned_nodes, wait_until
from tests.interop.test_js_libp2p import LineReader
from zion.protocols import sync
from zion.protocols.discovery import RENDEZVOUS_CID

INTEROP_DIR = Path(__file__).resolve().parent

#: js_dht_discover.mjs gives up after 20 s; its own start costs ~1 s.
RESULT_TIMEOUT_S = 25.0
CONNECTED_TIMEOUT_S = 5.0
EXIT_TIMEOUT_S = 10.0


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start named Zion nodes; every one still running is killed at the end of the test."""
    with spawned_nodes(tmp_path) as start:
        yield start


def _stderr_of(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(none)"


@pytest.mark.interop
def test_js_libp2p_finds_a_zion_member_through_a_zion_seed_dht(
    node_binary: str, spawn: Spawn, tmp_path: Path
) -> None:
    seed = spawn("seed", extra=["--profile", "seed", "--metrics", "127.0.0.1:0"])
    seed_address = seed.address
    member = spawn("member", bootstrap=[seed_address])
    member_id, seed_id = member.peer_id, seed.peer_id
    member_addrs = member.api.get("/api/v1/node").json()["addrs"]
    assert seed.status()["dht"] == "server"

    stderr_path = tmp_path / "js_dht_discover.stderr"
    argv = [node_binary, "--import", "./polyfill.mjs", "js_dht_discover.mjs", seed_address]
    with open(stderr_path, "w") as stderr:
        js = subprocess.Popen(
            argv,
            cwd=INTEROP_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert js.stdin is not None and js.stdout is not None
    try:
        try:
            line = LineReader(js.stdout, "js_dht_discover").next_line(
                time.monotonic() + RESULT_TIMEOUT_S, "the DHT findings"
            )
            result: dict[str, Any] = json.loads(line)
            # The js node holds its connection until we close its stdin: the member sees it.
            wait_until(
                lambda: member.connected_to(result["js_peer_id"]),
                CONNECTED_TIMEOUT_S,
                "the member to list the js node among its peers",
            )
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\n--- js_dht_discover stderr:\n{_stderr_of(stderr_path)}"
                f"\n--- member log:\n{member.log_tail()}\n--- seed log:\n{seed.log_tail()}"
            ) from None
        (tmp_path / "js_dht_discover.json").write_text(json.dumps(result, indent=1))
        js.stdin.close()
        assert js.wait(timeout=EXIT_TIMEOUT_S) == 0, _stderr_of(stderr_path)
    finally:
        if js.poll() is None:
            js.kill()
            js.wait(timeout=EXIT_TIMEOUT_S)
        js.stdout.close()

    # The js node was given the seed and nothing else.
    assert result["argv"] == [seed_address]
    assert member_id not in " ".join(argv)
    assert not set(member_addrs) & set(argv)
    assert result["dht_mode"] == "client"
    # Third-party code derives the same rendezvous key from the convention.
    assert result["rendezvous_cid"] == RENDEZVOUS_CID
    # (a) findProviders: the seed named the member as a provider, with its addresses.
    assert result["member"] == member_id
    assert seed_id in result["providers_answered_by"]
    assert set(result["member_addrs"]) & set(member_addrs), (result["member_addrs"], member_addrs)
    # (b) findPeer over the network: the seed answered FIND_NODE with the member.
    assert result["find_peer"]["ok"] is True, result["find_peer"]
    assert seed_id in result["find_peer"]["answered_by"], result["find_peer"]
    assert set(result["find_peer"]["addrs"]) & set(member_addrs), result["find_peer"]
    # (c) the dial went to an address from the DHT and reached a Zion node.
    assert result["remote_peer"] == member_id
    assert result["dialed"] in result["member_addrs"]
    assert result["remote_addr"] in member_addrs, result["remote_addr"]
    assert sync.PROTOCOL_ID in result["protocols"], result["protocols"]
