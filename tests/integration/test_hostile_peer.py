"""A raw libp2p peer publishes invalid records: rejected, stored nowhere, forwarded to no one."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.integration.nodes import NodeProcess, wait_until
from zion.protocols import gossip, limits, records

Spawn = Callable[..., NodeProcess]
DAY = 24 * 3600 * 1000


def listing(
    key: Ed25519PrivateKey, subject: str, seq: int, now: int, title: str = "x"
) -> records.Record:
    return records.sign_record(
        key,
        kind="listing",
        subject=subject,
        seq=seq,
        created=now + seq,
        body=records.ListingBody(
            title=title, price=records.Price(amount=1, currency="EUR"), category="test"
        ),
        expires=now + DAY,
    )


def envelope(*blocks: bytes) -> dict[str, Any]:
    data = cbor2.dumps({"v": 1, "records": list(blocks)}, canonical=True)
    return {"topic": gossip.TOPIC_LISTINGS, "data": data.hex()}


def resigned(key: Ed25519PrivateKey, value: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in value.items() if k != "sig"}
    payload = records.SIGNATURE_DOMAIN + cbor2.dumps(unsigned, canonical=True)
    return cbor2.dumps(dict(unsigned, sig=key.sign(payload)), canonical=True)


def publish_raw(
    target: NodeProcess, payloads: list[dict[str, Any]], tmp_path: Path, until: Callable[[], object]
) -> None:
    """Run raw_peer.py against ``target`` with ``payloads`` until ``until()`` holds."""
    payload_file = tmp_path / "payloads.json"
    payload_file.write_text(json.dumps(payloads))
    raw = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("raw_peer.py")),
            target.address,
            str(payload_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(until, 30, "the last payload stored")
    finally:
        raw.kill()
        output = raw.communicate(timeout=10)[0].decode(errors="replace")
    assert "published" in output, output


def test_invalid_gossip_is_rejected_and_not_forwarded(spawn: Spawn, tmp_path: Path) -> None:
    a = spawn("a")
    b = spawn("b", bootstrap=[a.address])
    wait_until(lambda: b.connected_to(a.peer_id), 15, "b connected")
    key = Ed25519PrivateKey.generate()
    import time

    now = int(time.time() * 1000)

    bad_sig = cbor2.loads(listing(key, "badsig", 1, now).block)
    bad_sig["sig"] = bytes(64)
    oversized = cbor2.loads(listing(key, "big", 1, now).block)
    oversized["body"]["description"] = "x" * (limits.MAX_RECORD_BYTES + 10)
    stale_new = listing(key, "stale", 2, now, "newer")
    stale_old = listing(key, "stale", 1, now, "older")
    dead = records.sign_record(
        key,
        kind="tombstone",
        subject="gone",
        seq=3,
        created=now + 3,
        body=records.TombstoneBody(of="listing"),
    )
    marker = listing(key, "marker", 1, now, "marker")

    rejected_payloads = [
        envelope(cbor2.dumps(bad_sig, canonical=True)),
        envelope(resigned(key, oversized)),
        envelope(b"\xff\xfe not cbor"),
        {"topic": gossip.TOPIC_LISTINGS, "data": b"not an envelope".hex()},
    ]
    ignored_payloads = [
        envelope(stale_old.block),  # after stale_new: stale seq
        envelope(listing(key, "gone", 2, now).block),  # after the tombstone: out of order
        envelope(listing(key, "gone", 1, now).block),
    ]
    payloads = [
        envelope(stale_new.block),
        envelope(dead.block),
        *rejected_payloads,
        *ignored_payloads,
        envelope(marker.block),
    ]
    publish_raw(a, payloads, tmp_path, until=lambda: all(n.get_listing("marker") for n in (a, b)))

    for node in (a, b):
        assert node.get_listing("badsig") is None
        assert node.get_listing("big") is None
        assert node.get_listing("gone") is None
        kept = node.get_listing("stale")
        assert kept is not None and kept["title"] == "newer" and kept["seq"] == 2
    status_a, status_b = a.status(), b.status()
    assert status_a["gossip_rejected"] == len(rejected_payloads)
    assert status_a["gossip_ignored"] == len(ignored_payloads)
    # b heard only what a forwarded: the valid messages, none of the others.
    assert status_b["gossip_rejected"] == 0
    assert status_b["gossip_ignored"] == 0
    assert status_b["gossip_accepted"] == 3


def test_copies_of_one_gossip_message_are_validated_once(spawn: Spawn, tmp_path: Path) -> None:
    """Mesh peers forward a message at about the same time: the copies that arrive while the
    first is being validated must be dropped as seen, not validated and stored again."""
    a = spawn("a")
    key = Ed25519PrivateKey.generate()
    import time

    now = int(time.time() * 1000)
    copied = envelope(listing(key, "copied", 1, now).block)
    payloads = [dict(copied, copies=8), envelope(listing(key, "marker", 1, now).block)]
    # Each copy that got through would be counted before the marker: validations run in
    # arrival order and the single writer stores batches first come, first served.
    publish_raw(a, payloads, tmp_path, until=lambda: a.get_listing("marker"))
    assert a.get_listing("copied") is not None
    status = a.status()
    assert (status["gossip_accepted"], status["gossip_ignored"]) == (2, 0)


def test_a_peer_that_keeps_sending_invalid_gossip_is_cut_off(spawn: Spawn, tmp_path: Path) -> None:
    a = spawn("a")
    from zion.node.network import MAX_REJECTS_PER_PEER

    # Distinct invalid messages (gossip drops exact copies before they are validated).
    junk = [
        {"topic": gossip.TOPIC_LISTINGS, "data": f"not an envelope {i}".encode().hex()}
        for i in range(MAX_REJECTS_PER_PEER + 5)
    ]

    def cut_off() -> bool:
        status = a.status()
        return status["banned_peers"] == 1 and status["peers"] == 0

    publish_raw(a, junk, tmp_path, until=cut_off)
    status = a.status()
    # Validation stops at the ban: the rest is dropped unread.
    assert MAX_REJECTS_PER_PEER <= status["gossip_rejected"] <= len(junk)
    assert "cutting off" in a.log_file.read_text()
