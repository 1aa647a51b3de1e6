"""Helia (helia 7, @helia/unixfs, @helia/bitswap, @helia/http, @ipld/car) and a Zion node
trade content: both ways over Bitswap, through the Zion gateway with Helia's verifying
trustless-gateway client, and as a CAR read by @ipld/car. helia_peer.mjs is third-party code
only; the file is random bytes larger than one chunk, so the DAG has several blocks."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.nodes import NodeProcess
from tests.unit.storage.test_unixfs_hamt import JS_IMPORTER
from zion.storage.unixfs import import_bytes
from zion.storage.unixfs.importer import DiscardingSink

INTEROP_DIR = Path(__file__).resolve().parent
TIMEOUT_S = 90
DATA = random.Random(11).randbytes(3 * 1024 * 1024 + 5)


def helia(node_binary: str, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [node_binary, "--import", "./polyfill.mjs", "helia_peer.mjs", *args],
        cwd=INTEROP_DIR,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines, f"helia_peer printed nothing; stderr:\n{result.stderr[-3000:]}"
    return dict(json.loads(lines[-1]))


def helia_serving(node_binary: str, *args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start a serving Helia (it stops when the test kills it); return it and its offer."""
    serving = subprocess.Popen(
        [node_binary, "--import", "./polyfill.mjs", "helia_peer.mjs", *args],
        cwd=INTEROP_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert serving.stdout is not None
    line = serving.stdout.readline()
    if not line:
        serving.kill()
        raise AssertionError(serving.stderr.read() if serving.stderr else "no output")
    return serving, dict(json.loads(line))


def zion_add(node: NodeProcess, data: bytes) -> str:
    response = node.api.post("/api/v1/ipfs/add", files=[("file", ("data.bin", data))])
    assert response.status_code == 201, response.text
    return str(response.json()["cid"])


def zion_address(node: NodeProcess) -> str:
    addrs = node.api.get("/api/v1/node").json()["addrs"]
    return next(a for a in addrs if a.startswith("/ip4/127.0.0.1/"))


@pytest.mark.interop
def test_helia_fetches_a_file_added_on_zion(
    node_binary: str, zion_node: NodeProcess, tmp_path: Path
) -> None:
    cid = zion_add(zion_node, DATA)
    out = tmp_path / "from-zion.bin"
    result = helia(node_binary, "fetch", zion_address(zion_node), cid, str(out))
    assert result["bytes"] == len(DATA)
    assert out.read_bytes() == DATA
    assert zion_node.status()["bitswap"]["blocks_sent"] >= 4


@pytest.mark.interop
def test_zion_fetches_a_file_added_on_helia(
    node_binary: str, zion_node: NodeProcess, tmp_path: Path
) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(DATA)
    serving, offer = helia_serving(node_binary, "serve", str(source))
    try:
        # Helia's default import equals Zion's default profile: same CID for the same bytes.
        assert offer["cid"] == str(import_bytes(DATA, DiscardingSink()).cid)
        response = zion_node.api.post("/api/v1/peers", json={"multiaddr": offer["addr"]})
        assert response.status_code == 200, response.text
        fetched = zion_node.api.get(f"/ipfs/{offer['cid']}", timeout=TIMEOUT_S)
        assert fetched.status_code == 200, fetched.text
        assert fetched.content == DATA
        assert zion_node.status()["bitswap"]["blocks_received"] >= 4
    finally:
        serving.kill()
        serving.communicate(timeout=10)


@pytest.mark.interop
def test_helias_trustless_gateway_client_verifies_the_zion_gateway(
    node_binary: str, zion_node: NodeProcess, tmp_path: Path
) -> None:
    cid = zion_add(zion_node, DATA)
    gateway = zion_node.api.base_url
    out = tmp_path / "via-gateway.bin"
    result = helia(node_binary, "gateway", str(gateway).rstrip("/"), cid, str(out))
    assert result["bytes"] == len(DATA)
    assert out.read_bytes() == DATA


@pytest.mark.interop
def test_the_gateways_car_reads_with_ipld_car(node_binary: str, zion_node: NodeProcess) -> None:
    cid = zion_add(zion_node, DATA)
    url = f"{str(zion_node.api.base_url).rstrip('/')}/ipfs/{cid}?format=car"
    result = helia(node_binary, "car", url)
    assert result["roots"] == [cid]
    assert result["blocks"] == 5  # 4 raw leaves and the root
    assert result["bytes"] > len(DATA)  # the leaves hold the file; the root adds a little


@pytest.mark.interop
def test_zion_reads_a_sharded_directory_made_by_helia(
    node_binary: str, zion_node: NodeProcess
) -> None:
    serving, offer = helia_serving(node_binary, "serve-dir", "6000")
    try:
        # The same directory built by Zion's importer (tests/unit/storage/test_unixfs_hamt.py).
        assert offer["cid"] == JS_IMPORTER["unixfs-v1-2025", 6000]
        zion_node.api.post("/api/v1/peers", json={"multiaddr": offer["addr"]}).raise_for_status()
        cid = offer["cid"]
        entry = zion_node.api.get(f"/ipfs/{cid}/entry-1234.txt", timeout=TIMEOUT_S)
        assert entry.status_code == 200, entry.text
        assert entry.text == "1234\n"
        accented = zion_node.api.get(f"/ipfs/{cid}/entry-7-%C3%A9.txt", timeout=TIMEOUT_S)
        assert accented.text == "7\n"
        listing = zion_node.api.get(f"/api/v1/ipfs/ls/{cid}", timeout=TIMEOUT_S).json()
        assert len(listing["items"]) == 6000
    finally:
        serving.kill()
        serving.communicate(timeout=10)
