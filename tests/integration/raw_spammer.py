"""A bare py-libp2p peer (no Zion node code) that floods a node with listing records.

Usage: python -m tests.integration.raw_spammer TARGET_MULTIADDR valid|invalid RATE
Publishes RATE records a second under its own peer ID, in gossip messages of BATCH records
each: "valid" ones are properly signed listings (each new), "invalid" ones carry a broken
signature. Prints "flooding as PEER_ID" once the target listens, then "sent N" every second, and
"disconnected after N" when the target cuts it off (then it exits).
"""

from __future__ import annotations

import sys
import time

import cbor2
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.integration.raw_peer import gossip_peer
from zion.protocols import gossip, records

BATCH = 100
DAY_MS = 24 * 3600 * 1000


def batch(key: Ed25519PrivateKey, first: int, valid: bool) -> bytes:
    now = int(time.time() * 1000)
    blocks = []
    for number in range(first, first + BATCH):
        record = records.sign_record(
            key,
            kind="listing",
            subject=f"spam-{number}",
            seq=1,
            created=now,
            body=records.ListingBody(
                title=f"spam {number}",
                price=records.Price(amount=1, currency="EUR"),
                category="spam",
            ),
            expires=now + DAY_MS,
        )
        block = record.block
        if not valid:
            value = cbor2.loads(block)
            value["sig"] = bytes(64)
            block = cbor2.dumps(value, canonical=True)
        blocks.append(block)
    return cbor2.dumps({"v": 1, "records": blocks}, canonical=True)


async def main(target: str, mode: str, rate: float) -> None:
    key = Ed25519PrivateKey.generate()
    async with gossip_peer(target, [gossip.TOPIC_LISTINGS]) as (host, pubsub, target_id):
        print(f"flooding as {host.get_id().to_base58()}", flush=True)
        interval = BATCH / rate
        sent, next_report = 0, trio.current_time() + 1
        deadline = trio.current_time()
        while target_id in host.get_connected_peers():
            await pubsub.publish(gossip.TOPIC_LISTINGS, batch(key, sent, mode == "valid"))
            sent += BATCH
            deadline += interval
            if trio.current_time() >= next_report:
                print(f"sent {sent}", flush=True)
                next_report += 1
            await trio.sleep_until(deadline)
        print(f"disconnected after {sent}", flush=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], float(sys.argv[3]))
