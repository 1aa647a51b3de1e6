"""A fresh node catches up N listings (default 100,000) from one peer over /zion/sync/1.0.0.

    .venv/bin/python bench/sync.py [--records 100000]

Prints records/s next to the Ed25519 verification rate measured in the same run; the target is
at least half that rate (every fetched record is verified, so verification bounds sync).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import NodeProcess, compare, ed25519_verify_seconds, wait_until

from zion.node.home import NodeHome
from zion.protocols import records
from zion.storage.database import Database
from zion.storage.records import RecordStore

DAY = 24 * 3600 * 1000


def seed_home(home: Path, count: int) -> None:
    """Fill a node home with ``count`` listings signed by that node's key."""
    node_home = NodeHome(home)
    node_home.init()
    key = node_home.load_key()
    store = RecordStore(Database(node_home.database_file))
    now = int(time.time() * 1000) - count
    batch: list[records.Record] = []
    for n in range(count):
        body = records.ListingBody(
            title=f"Listing number {n}",
            description=f"A thing for sale, lot {n}, in good condition.",
            price=records.Price(amount=100 + n, currency="EUR"),
            category=("tools", "books", "bikes", "garden")[n % 4],
            tags=["used", f"lot{n % 50}"],
        )
        batch.append(
            records.sign_record(
                key,
                kind="listing",
                subject=f"s{n}",
                seq=1,
                created=now + n,
                body=body,
                expires=now + 30 * DAY,
            )
        )
        if len(batch) == 2000:
            store.apply_many(batch, now)
            batch = []
    if batch:
        store.apply_many(batch, now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()

    yardsticks = ed25519_verify_seconds()
    for name, seconds in yardsticks.items():
        print(f"Ed25519 verification, {name}: {seconds * 1e6:.1f} us ({1 / seconds:,.0f}/s)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        seed_home(root / "source", args.records)
        print(f"seeded {args.records} signed listings in {time.perf_counter() - started:.1f}s")
        source = NodeProcess(root / "source", "source").start()
        fresh = NodeProcess(root / "fresh", "fresh")
        try:
            fresh.start()
            # Timed from the dial: what a running node pays to catch up, without process start.
            started = time.perf_counter()
            response = fresh.api.post("/api/v1/peers", json={"multiaddr": source.address})
            response.raise_for_status()
            wait_until(
                lambda: fresh.status()["records"] >= args.records, 600, "catch-up", interval=0.5
            )
            elapsed = time.perf_counter() - started
        finally:
            source.stop()
            if fresh.process is not None and fresh.process.poll() is None:
                fresh.stop()
    rate = args.records / elapsed
    print(f"caught up {args.records:,} records in {elapsed:.1f}s: {rate:,.0f} records/s")
    # "At least half the verification rate" = at most 2 verifications' time per record.
    compare("time per synced record", 1 / rate, 2.0, yardsticks)


if __name__ == "__main__":
    main()
