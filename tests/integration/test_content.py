"""Content between real nodes: Bitswap fetches through the gateway, listings' images on
demand, and a hostile Bitswap peer."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.nodes import NodeProcess, wait_until
from tests.integration.test_cli import Spawn
from zion.protocols.bitswap import Message, encode_message
from zion.protocols.cid import RAW, Cid
from zion.protocols.framing import encode_frame, encode_varint

DATA = random.Random(7).randbytes(5 * 1024 * 1024 + 3)


def add(node: NodeProcess, name: str, data: bytes) -> str:
    response = node.api.post("/api/v1/ipfs/add", files=[("file", (name, data))])
    assert response.status_code == 201, response.text
    return str(response.json()["cid"])


def bitswap_stats(node: NodeProcess) -> dict[str, Any]:
    return dict(node.status()["bitswap"])


def test_a_node_fetches_a_file_from_another_over_bitswap(spawn: Spawn) -> None:
    a = spawn("a")
    b = spawn("b", bootstrap=[a.address])
    wait_until(lambda: b.connected_to(a.peer_id), 15, "b connected to a")
    cid = add(a, "data.bin", DATA)
    response = b.api.get(f"/ipfs/{cid}", timeout=60)
    assert response.status_code == 200
    assert response.content == DATA
    assert bitswap_stats(b)["blocks_received"] == 7  # 6 leaves and the root
    # Now B has it: a range is served from B's own blockstore.
    part = b.api.get(f"/ipfs/{cid}", headers={"Range": "bytes=5000000-5000009"})
    assert part.content == DATA[5000000:5000010]


def test_a_remote_listings_image_is_fetched_when_viewed(spawn: Spawn) -> None:
    a = spawn("a")
    b = spawn("b", bootstrap=[a.address])
    wait_until(lambda: b.connected_to(a.peer_id), 15, "b connected to a")
    image = b"\x89PNG\r\n\x1a\n" + random.Random(3).randbytes(50_000)
    image_cid = add(a, "bike.png", image)
    listing = a.create_listing("Bike with photo", images=[image_cid])
    wait_until(lambda: b.get_listing(listing["id"]) is not None, 10, "listing on b")
    seen = b.get_listing(listing["id"])
    assert seen is not None and seen["images"] == [image_cid]
    response = b.api.get(f"/ipfs/{image_cid}")
    assert response.content == image
    assert response.headers["content-type"] == "image/png"
    # The seller's node pins its listing's images.
    pins = a.api.get("/api/v1/ipfs/pins").json()["items"]
    owners = {pin["cid"]: pin["owners"] for pin in pins}
    assert any(owner.startswith("listing:") for owner in owners[image_cid])


def test_hostile_bitswap_peer_costs_little_and_stores_nothing(spawn: Spawn, tmp_path: Path) -> None:
    a = spawn("a")
    b = spawn("b", bootstrap=[a.address])
    wait_until(lambda: b.connected_to(a.peer_id), 15, "b connected to a")
    cid = add(a, "data.bin", b"served despite the noise")
    blocks_before = a.status()["content"]["blocks"]
    unwanted = b"nobody asked for this"
    frames = [
        encode_frame(encode_message(Message(blocks=[(Cid.for_block(RAW, unwanted), unwanted)]))),
        encode_frame(b"\x0a\x05\xff\xff\xff\xff\xff"),  # malformed wantlist
        encode_varint(64 * 1024 * 1024) + b"\0" * 1000,  # announces a 64 MiB message
        encode_frame(b"\x1a\x06\x0a\x04\x01\x55\x12\x20"),  # a block with no data field
    ]
    frames_file = tmp_path / "frames.json"
    frames_file.write_text(json.dumps([f.hex() for f in frames]))
    raw = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("raw_bitswap_peer.py")),
            a.address,
            "--frames",
            str(frames_file),
            "--want",
            cid,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(
            lambda: bitswap_stats(a)["rejected_messages"] >= 3, 20, "hostile frames rejected"
        )
        wait_until(lambda: bitswap_stats(a)["blocks_sent"] >= 1, 20, "the honest want served")
    finally:
        raw.kill()
        output = raw.communicate(timeout=10)[0].decode(errors="replace")
    assert "received " + b"served despite the noise".hex() in output, output
    stats = bitswap_stats(a)
    assert stats["unwanted_blocks"] == 1
    assert a.status()["content"]["blocks"] == blocks_before  # nothing stored
    # The node still serves everyone else.
    assert b.api.get(f"/ipfs/{cid}").content == b"served despite the noise"


def test_a_forged_block_is_not_taken_for_the_real_one(spawn: Spawn, tmp_path: Path) -> None:
    """A peer answers our want with bytes that do not hash to the CID, then with an oversized
    frame, then with the real block: the first two are refused and stored nowhere."""
    a = spawn("a")
    real = b"the real bytes of a photo"
    cid = str(Cid.for_block(RAW, real))
    raw = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("raw_bitswap_peer.py")),
            a.address,
            "--serve",
            real.hex(),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert raw.stdout is not None
        assert raw.stdout.readline().strip() == b"ready"
        wait_until(lambda: len(a.api.get("/api/v1/peers").json()["items"]) == 1, 10, "peer")
        response = a.api.get(f"/ipfs/{cid}", timeout=60)
        assert response.status_code == 200
        assert response.content == real
    finally:
        raw.kill()
        output = raw.communicate(timeout=10)[0].decode(errors="replace")
    assert "answered" in output, output
    stats = bitswap_stats(a)
    assert stats["unwanted_blocks"] == 1  # the forged bytes: their hash names another block
    assert stats["rejected_messages"] == 1  # the oversized frame
    assert a.status()["content"]["blocks"] == 1  # only the real block


def test_providers_are_found_through_the_dht(spawn: Spawn) -> None:
    """A and B know only a DHT server (no Zion code): A announces what it adds; B finds A
    as a provider there, connects and fetches over Bitswap."""
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("raw_dht_server.py"))],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        dht_address = server.stdout.readline().strip()
        a = spawn("a", bootstrap=[dht_address])
        b = spawn("b", bootstrap=[dht_address])
        cid = add(a, "found.txt", b"found through the DHT")

        def peers_of(node: NodeProcess) -> set[str]:
            return {p["peer_id"] for p in node.api.get("/api/v1/peers").json()["items"]}

        assert a.peer_id not in peers_of(b)

        # A's announcement reaches the server in the background: ask until B finds it.
        def fetched() -> bool:
            response = b.api.get(f"/ipfs/{cid}", timeout=60)
            return response.status_code == 200 and response.content == b"found through the DHT"

        wait_until(fetched, 60, "b fetched the file from a provider found in the DHT")
        assert a.peer_id in peers_of(b)
    finally:
        server.kill()
        server.communicate(timeout=10)
