"""A seed and its members under load: memory per node, connection setup at the seed, and
what a Prometheus scrape costs.

    .venv/bin/python bench/seed.py [--members 5] [--connections 300] [--load-seconds 60]

- memory: resident memory of the seed and of each member (own processes on 127.0.0.1),
  idle after start, then after ``--load-seconds`` of listings and messages published at
  20/s spread over the members (limit: 256 MiB per node);
- connection setup: bench/dialer.py sets up ``--connections`` connections to the seed
  (TCP + Noise + yamux, 8 identities in parallel, each hanging up and dialing again), then
  the same to a bare py-libp2p host (bench/bare_host.py) in the same run; connections per
  second and the seed's CPU per connection (limit: at least half the bare host's rate);
- scrape: GET /metrics 200 times, p50/p95 and the seed's CPU per scrape, next to
  GET /api/v1/status (limit: 10 ms at the median).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import NodeProcess, cpu_seconds, rss_mib, wait_until

from tests.integration.nodes import spawned_nodes

BENCH = Path(__file__).resolve().parent
MEMORY_LIMIT_MIB = 256
SCRAPE_LIMIT_S = 0.010
PUBLISH_PER_S = 20


def pid(node: NodeProcess) -> int:
    assert node.process is not None
    return node.process.pid


def memory(label: str, seed: NodeProcess, members: list[NodeProcess]) -> float:
    seed_rss = rss_mib(pid(seed))
    member_rss = [rss_mib(pid(m)) for m in members]
    worst = max(seed_rss, *member_rss)
    print(
        f"  {label:<26} seed {seed_rss:6.1f} MiB   members median"
        f" {statistics.median(member_rss):6.1f} MiB, max {max(member_rss):6.1f} MiB"
    )
    return worst


def publish(members: list[NodeProcess], seconds: float) -> int:
    """Listings and channel messages at PUBLISH_PER_S, round robin over the members."""
    count, deadline = 0, time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        node = members[count % len(members)]
        if count % 2:
            node.api.post("/api/v1/channels/bench/messages", json={"text": f"m{count}"})
        else:
            node.create_listing(f"load {count}")
        count += 1
        next_at += 1 / PUBLISH_PER_S
        time.sleep(max(0.0, next_at - time.monotonic()))  # pacing, not synchronisation
    return count


def dial(target: str, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(BENCH / "dialer.py"), target, "--connections", str(connections)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def timed_gets(
    client: httpx.Client, url: str, count: int, process: int
) -> tuple[list[float], float]:
    client.get(url).raise_for_status()
    cpu_before = cpu_seconds(process)
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        client.get(url).raise_for_status()
        samples.append(time.perf_counter() - start)
    return samples, (cpu_seconds(process) - cpu_before) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--load-seconds", type=float, default=60)
    parser.add_argument("--idle-seconds", type=float, default=30)
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, spawned_nodes(Path(tmp)) as spawn:
        seed = spawn("seed", extra=["--profile", "seed", "--metrics", "127.0.0.1:0"])
        members = [spawn(f"m{i}", bootstrap=[seed.address]) for i in range(args.members)]
        wait_until(lambda: all(m.status()["peers"] >= 1 for m in members), 30, "members joined")

        print(f"Memory, a seed and {args.members} members (resident, each its own process)")
        time.sleep(args.idle_seconds)  # the idle window being measured
        idle = memory(f"idle after {args.idle_seconds:.0f} s", seed, members)
        published = publish(members, args.load_seconds)
        loaded = memory(f"after {published} records", seed, members)
        for label, value in (("idle", idle), ("under load", loaded)):
            verdict = "PASS" if value <= MEMORY_LIMIT_MIB else "FAIL"
            print(f"  {verdict} largest node {label}: {value:.1f} MiB (limit {MEMORY_LIMIT_MIB})")

        print(f"Connection setup, {args.connections} connections, 8 dialers in parallel")
        cpu_before = cpu_seconds(pid(seed))
        at_seed = dial(seed.address, args.connections)
        seed_cpu = (cpu_seconds(pid(seed)) - cpu_before) / max(1, at_seed["connections"])
        bare = subprocess.Popen(
            [sys.executable, str(BENCH / "bare_host.py")], stdout=subprocess.PIPE, text=True
        )
        try:
            assert bare.stdout is not None
            bare_addr = bare.stdout.readline().strip()
            bare_cpu_before = cpu_seconds(bare.pid)
            at_bare = dial(bare_addr, args.connections)
            bare_cpu = (cpu_seconds(bare.pid) - bare_cpu_before) / max(1, at_bare["connections"])
        finally:
            bare.kill()
            bare.wait()
        rates = {}
        for label, run, cpu in (
            ("Zion seed", at_seed, seed_cpu),
            ("bare py-libp2p", at_bare, bare_cpu),
        ):
            rates[label] = run["connections"] / run["seconds"]
            print(
                f"  {label:<16} {rates[label]:6.1f} connections/s, {run['failures']:.0f} failed,"
                f" {cpu * 1000:5.1f} ms CPU per connection on the listener"
            )
        print(
            f"  the seed's CPU alone would take {1 / seed_cpu:.0f} connections/s per core"
            " (the dialers, Python too, share the machine and set the pace above)"
        )
        ratio = rates["Zion seed"] / rates["bare py-libp2p"]
        verdict = "PASS" if ratio >= 0.5 else "FAIL"
        print(f"  {verdict} the seed sets up {ratio:.2f} x the bare host's rate (limit 0.5 x)")

        print(f"Scrapes, {args.scrapes} each")
        metrics_url = (seed.home / "metrics.url").read_text().strip() + "/metrics"
        with httpx.Client(timeout=10) as client:
            scrape, scrape_cpu = timed_gets(client, metrics_url, args.scrapes, pid(seed))
        status_url = seed.base_url + "/api/v1/status"
        status, status_cpu = timed_gets(seed.api, status_url, args.scrapes, pid(seed))
        for label, samples, cpu in (
            ("GET /metrics", scrape, scrape_cpu),
            ("GET /api/v1/status", status, status_cpu),
        ):
            samples.sort()
            print(
                f"  {label:<20} p50 {statistics.median(samples) * 1000:6.2f} ms"
                f"   p95 {samples[int(len(samples) * 0.95)] * 1000:6.2f} ms"
                f"   seed CPU {cpu * 1000:5.2f} ms each"
            )
        p50 = statistics.median(scrape)
        verdict = "PASS" if p50 <= SCRAPE_LIMIT_S else "FAIL"
        print(f"  {verdict} a scrape takes {p50 * 1000:.2f} ms at the median (limit 10 ms)")


if __name__ == "__main__":
    main()
