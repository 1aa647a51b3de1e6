"""Gossip across 5 and 10 nodes, each its own process on 127.0.0.1.

    .venv/bin/python bench/gossip.py [--nodes 5 10] [--seconds 10]

For each network size:
- latency: listings are published at 100/s through node 0's API (records published close
  together share gossip messages); p50/p99 of (stored on a node - created on node 0) over every
  other node;
- CPU per delivered record per node: CPU time all node processes used during that run, divided
  by records x nodes, next to one Ed25519 verification measured in the same run (limit 3x);
- the highest rate (of a doubling series) at which every node receives every listing by gossip
  within 10 s of the last publish.
Periodic sync is turned off (interval 1 h) so only gossip delivers, and the gossip budget
per member (node/floodcontrol.py, 100 records/s by default) is raised above every rate tried.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
from common import NodeProcess, compare, cpu_seconds, ed25519_verify_seconds, wait_until

from zion.node.home import NodeHome

P99_LIMIT_S = 1.0
#: A member's gossip budget in the benchmark's nodes: above any rate it tries.
BENCH_RECORDS_PER_S = 10_000
DELIVERY_GRACE_S = 10.0


def start_network(root: Path, count: int, window_ms: int = 50) -> list[NodeProcess]:
    nodes: list[NodeProcess] = []
    for n in range(count):
        home = root / f"n{n}"
        NodeHome(home).init()
        # Only the settings the benchmark changes (the rest are the defaults): no periodic
        # sync; the batch window under test; and a member's gossip budget (node/floodcontrol.py)
        # above the highest rate tried, since this measures the gossip path, not the policy.
        (home / "config.toml").write_text(
            f"[sync]\ninterval_s = 3600\n[gossip]\nbatch_window_ms = {window_ms}\n"
            f"peer_records_per_s = {BENCH_RECORDS_PER_S}\n"
            f"peer_records_burst = {BENCH_RECORDS_PER_S * 10}\n"
        )
        # Each node dials node 0 and up to two others, so paths have several hops.
        bootstrap = [nodes[i].address for i in sorted({0, n // 2, n - 1}) if 0 <= i < n]
        node = NodeProcess(home, f"n{n}")
        node.start(bootstrap=bootstrap)
        nodes.append(node)
    for node in nodes[1:]:
        wait_until(lambda n=node: n.status()["peers"] >= 1, 20, f"{node.name} connected")
    return nodes


def publish(
    node: NodeProcess | list[NodeProcess], rate: float, seconds: float, prefix: str
) -> list[str]:
    """POST listings at ``rate``/s for ``seconds`` with 8 client threads per node, spread
    round-robin over ``node`` if it is a list; return their IDs."""
    nodes = node if isinstance(node, list) else [node]
    threads_per_node = 8
    workers = threads_per_node * len(nodes)
    total = int(rate * seconds)
    ids: list[str] = []
    lock = threading.Lock()
    start = time.perf_counter()

    def worker(first: int) -> None:
        target = nodes[first % len(nodes)]
        token = (target.home / "api_token").read_text().strip()
        with httpx.Client(
            base_url=target.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:
            for n in range(first, total, workers):
                due = start + n / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)  # pacing the load, not synchronising
                body = {
                    "title": f"{prefix} {n}",
                    "price": {"amount": n, "currency": "EUR"},
                    "category": "bench",
                }
                response = http.post("/api/v1/listings", json=body)
                response.raise_for_status()
                with lock:
                    ids.append(response.json()["id"])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return ids


def arrivals(node: NodeProcess, prefix: str) -> list[tuple[int, int]]:
    """(created, received) in ms of this run's listings stored by ``node``."""
    conn = sqlite3.connect(f"file:{node.home / 'zion.db'}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT r.created, r.received FROM records r JOIN listings l ON l.record_id = r.id"
            " WHERE l.title LIKE ?",
            (prefix + " %",),
        ).fetchall()
    finally:
        conn.close()


def receiver_cpu(nodes: list[NodeProcess]) -> float:
    return sum(cpu_seconds(node.process.pid) for node in nodes)  # type: ignore[union-attr]


def delivered_everywhere(nodes: list[NodeProcess], prefix: str, count: int) -> bool:
    return all(len(arrivals(node, prefix)) >= count for node in nodes)


def rate_series(
    nodes: list[NodeProcess],
    publishers: NodeProcess | list[NodeProcess],
    rates: tuple[int, ...],
    label: str,
) -> None:
    """Publish at each rate for 5 s until a node misses a listing or the APIs fall behind."""
    best = 0
    for rate in rates:
        prefix = f"rate{rate}{'all' if isinstance(publishers, list) else ''}"
        started = time.perf_counter()
        ids = publish(publishers, rate, 5, prefix)
        achieved = len(ids) / (time.perf_counter() - started)
        try:
            wait_until(
                lambda p=prefix, n=len(ids): delivered_everywhere(nodes, p, n),  # noqa: B008
                DELIVERY_GRACE_S,
                f"delivery at {rate}/s",
            )
        except AssertionError:
            print(
                f"{rate} listings/s {label}: not every node had every listing after "
                f"{DELIVERY_GRACE_S:g} s"
            )
            break
        print(
            f"{rate} listings/s offered {label}, {achieved:.0f}/s accepted by the API: "
            "every node received every listing"
        )
        best = max(best, int(achieved))
        if achieved < rate * 0.9:
            print("the API is the limit from here on")
            break
    print(f"highest rate with full delivery {label}: {best} listings/s (as published)")


def run_size(
    root: Path, count: int, seconds: float, window_ms: int, yardsticks: dict[str, float]
) -> None:
    print(f"\n== {count} nodes, gossip batch window {window_ms} ms ==")
    nodes = start_network(root / f"net{count}-{window_ms}", count, window_ms)
    try:
        # Warm-up: meshes form within a few heartbeats; wait until a probe reaches everyone.
        publish(nodes[0], 5, 1, "warmup")
        wait_until(lambda: delivered_everywhere(nodes, "warmup", 5), 30, "warm-up delivery")

        receivers = nodes[1:]
        idle_before = receiver_cpu(receivers)
        idle_started = time.perf_counter()
        time.sleep(seconds)  # measuring idle CPU over the same span, not synchronising
        idle_rate = (receiver_cpu(receivers) - idle_before) / (time.perf_counter() - idle_started)

        cpu_before = receiver_cpu(receivers)
        started = time.perf_counter()
        ids = publish(nodes[0], 100, seconds, "steady")
        wait_until(
            lambda: delivered_everywhere(nodes, "steady", len(ids)),
            DELIVERY_GRACE_S,
            "steady delivery",
        )
        cpu_used = receiver_cpu(receivers) - cpu_before
        busy_s = time.perf_counter() - started
        latencies = sorted(
            (received - created) / 1000
            for node in nodes[1:]
            for created, received in arrivals(node, "steady")
        )
        p50 = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(
            f"100 listings/s for {seconds:g}s ({len(ids)} listings): "
            f"latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
            f"({'PASS' if p99 < P99_LIMIT_S else 'FAIL'}: p99 < {P99_LIMIT_S:g} s)"
        )
        delivered = len(ids) * len(receivers)
        per_record = cpu_used / delivered
        idle_share = idle_rate * busy_s
        net_per_record = (cpu_used - idle_share) / delivered
        print(
            f"CPU of the {len(receivers)} receiving nodes: {cpu_used:.2f} s for {delivered}"
            f" deliveries; idle baseline {idle_rate * 1000 / len(receivers):.0f} ms/s per node"
        )
        print(
            f"CPU per delivered record per node: {per_record * 1e6:.0f} us in all,"
            f" {net_per_record * 1e6:.0f} us above the idle baseline"
        )
        compare("CPU per record per node (in all)", per_record, 3.0, yardsticks)

        rate_series(nodes, nodes[0], (200, 400, 800, 1600), "from node 0")
        # The same from every node at once: gossip's own limit, not one API's.
        rate_series(nodes, nodes, (400, 800, 1600, 3200), "from all nodes")
    finally:
        for node in nodes:
            if node.process is not None and node.process.poll() is None:
                node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--window-ms", type=int, nargs="+", default=[50, 250], help="gossip batch windows to try"
    )
    args = parser.parse_args()
    yardsticks = ed25519_verify_seconds()
    for name, seconds in yardsticks.items():
        print(f"Ed25519 verification, {name}: {seconds * 1e6:.1f} us")
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.nodes:
            for window_ms in args.window_ms:
                run_size(Path(tmp), count, args.seconds, window_ms, yardsticks)


if __name__ == "__main__":
    main()
