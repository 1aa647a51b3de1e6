"""The soak: 20 nodes as processes under a steady stream of listings and messages.

Every node must end with the same records; each node's resident memory must stay flat after
the warm-up (the slope of a least-squares line through its samples is reported and bounded);
file descriptors and trio tasks must not keep growing. 5 minutes by default, as in CI;
``--soak-seconds 3600`` for an hour.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.nodes import NodeProcess, Spawn, wait_until

pytestmark = pytest.mark.soak

NODES = 20
STARTING_AT_ONCE = 2
#: Publishing: one listing every LISTING_EVERY_S and one message every MESSAGE_EVERY_S, each
#: from a node chosen at random.
LISTING_EVERY_S = 1.0
MESSAGE_EVERY_S = 2.0
SAMPLE_EVERY_S = 10.0
#: Memory samples before this share of the run are the warm-up (imports, caches, the mesh).
WARM_UP_SHARE = 0.3
#: The bounds checked: RSS growth after the warm-up, in MiB per hour, for the median node and
#: for any node. The records themselves take memory (measured: +31 MiB/h median, +48 max, in a
#: 5-minute run storing ~450 records), so "flat" here means no growth beyond that; a leak of
#: 10 KiB per gossip message would add ~55 MiB/h. A longer --soak-seconds sharpens the slope.
MAX_MEDIAN_RSS_SLOPE_MIB_PER_H = 60.0
MAX_RSS_SLOPE_MIB_PER_H = 120.0
MAX_FD_GROWTH = 16
MAX_TASK_GROWTH = 50
#: Tasks a libp2p connection runs (yamux, identify, pubsub streams): measured ~10.
TASKS_PER_CONNECTION = 20
CONVERGE_TIMEOUT_S = 90.0
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib(node: NodeProcess) -> float:
    assert node.process is not None
    return int(Path(f"/proc/{node.process.pid}/statm").read_text().split()[1]) * PAGE / 2**20


def open_fds(node: NodeProcess) -> int:
    assert node.process is not None
    return len(os.listdir(f"/proc/{node.process.pid}/fd"))


def connections(node: NodeProcess) -> int:
    return int(node.status()["connections"]["total"])


def slope_per_hour(samples: list[tuple[float, float]]) -> float:
    times, values = zip(*samples, strict=True)
    return statistics.linear_regression(times, values).slope * 3600


def test_twenty_nodes_hold_steady_and_agree(spawn: Spawn, request: pytest.FixtureRequest) -> None:
    duration = float(request.config.getoption("--soak-seconds"))
    seed = spawn("seed", extra=["--profile", "seed", "--metrics", "127.0.0.1:0"])
    # Two at a time: one by one, 20 starts take over a minute; more at once starve the
    # other worker's tests while the soak runs beside them (dev.sh test).
    with ThreadPoolExecutor(STARTING_AT_ONCE) as pool:
        members = pool.map(lambda i: spawn(f"n{i:02d}", bootstrap=[seed.address]), range(1, NODES))
        nodes = [seed, *members]
    wait_until(
        lambda: all(node.status()["peers"] >= 2 for node in nodes), 60, "every node to have peers"
    )

    samples: dict[str, list[tuple[float, float]]] = {node.name: [] for node in nodes}
    published: list[str] = []
    posted: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def publish() -> None:
        rng = random.Random(8)
        next_listing = next_message = time.monotonic()
        count = 0
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_listing:
                    node = rng.choice(nodes)
                    published.append(node.create_listing(f"soak {count}")["id"])
                    count += 1
                    next_listing += LISTING_EVERY_S
                if now >= next_message:
                    node = rng.choice(nodes)
                    response = node.api.post(
                        "/api/v1/channels/soak/messages", json={"text": f"soak {count}"}
                    )
                    response.raise_for_status()
                    posted.append(response.json()["id"])
                    next_message += MESSAGE_EVERY_S
                stop.wait(max(0.0, min(next_listing, next_message) - time.monotonic()))
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    publisher = threading.Thread(target=publish, daemon=True)
    started = time.monotonic()
    publisher.start()
    warm_up_end = started + duration * WARM_UP_SHARE
    baseline: dict[str, tuple[int, int, int]] = {}
    try:
        while (now := time.monotonic()) < started + duration and not errors:
            for node in nodes:
                samples[node.name].append((now - started, rss_mib(node)))
                assert node.process is not None and node.process.poll() is None, node.log_tail()
            if now >= warm_up_end and not baseline:
                baseline = {
                    n.name: (open_fds(n), n.status()["tasks"], connections(n)) for n in nodes
                }
            time.sleep(SAMPLE_EVERY_S)  # the sampling period, not synchronisation
    finally:
        stop.set()
        publisher.join(timeout=30)
    assert not errors, errors

    converge_started = time.monotonic()
    wait_until(
        lambda: all(n.listing_ids() >= set(published) for n in nodes),
        CONVERGE_TIMEOUT_S,
        "every node to hold every listing",
    )
    wait_until(
        lambda: all(n.message_ids("soak") >= set(posted) for n in nodes),
        CONVERGE_TIMEOUT_S,
        "every node to hold every message",
    )
    converged_s = time.monotonic() - converge_started
    assert len({frozenset(n.listing_ids()) for n in nodes}) == 1, "nodes disagree on listings"
    assert len({frozenset(n.message_ids("soak")) for n in nodes}) == 1, "... on messages"

    report = [
        NodeReport.of(node, samples[node.name], duration, baseline[node.name]) for node in nodes
    ]
    print(
        f"\nsoak: {NODES} nodes, {duration:.0f} s, {len(published)} listings,"
        f" {len(posted)} messages; all nodes agreed {converged_s:.1f} s after the last"
    )
    for line in report:
        print(f"  {line}")
    slopes = [line.slope for line in report]
    median_slope = statistics.median(slopes)
    print(f"  median slope {median_slope:+.1f} MiB/h, max {max(slopes):+.1f} MiB/h")
    assert median_slope < MAX_MEDIAN_RSS_SLOPE_MIB_PER_H, f"RSS grows {median_slope:.1f} MiB/h"
    for line in report:
        assert line.slope < MAX_RSS_SLOPE_MIB_PER_H, (
            f"{line.name}: RSS grows {line.slope:.1f} MiB/h"
        )
        # New connections (discovery keeps adding peers up to min_peers) bring their own
        # descriptor and tasks: what grows beyond them is a leak.
        new_connections = max(0, line.connection_growth)
        assert line.fd_growth <= new_connections + MAX_FD_GROWTH, f"{line.name}: fds leak"
        assert line.task_growth <= TASKS_PER_CONNECTION * new_connections + MAX_TASK_GROWTH, (
            f"{line.name}: tasks leak"
        )


@dataclass(frozen=True)
class NodeReport:
    name: str
    rss: float
    slope: float
    fd_growth: int
    task_growth: int
    connection_growth: int

    @classmethod
    def of(
        cls,
        node: NodeProcess,
        samples: list[tuple[float, float]],
        duration: float,
        baseline: tuple[int, int, int],
    ) -> NodeReport:
        after = [s for s in samples if s[0] >= duration * WARM_UP_SHARE]
        fds, tasks, conns = baseline
        return cls(
            name=node.name,
            rss=samples[-1][1],
            slope=slope_per_hour(after) if len(after) >= 3 else 0.0,
            fd_growth=open_fds(node) - fds,
            task_growth=node.status()["tasks"] - tasks,
            connection_growth=connections(node) - conns,
        )

    def __str__(self) -> str:
        return (
            f"{self.name}: RSS {self.rss:.0f} MiB, after warm-up {self.slope:+.1f} MiB/h;"
            f" growth: fds {self.fd_growth:+d}, tasks {self.task_growth:+d},"
            f" connections {self.connection_growth:+d}"
        )
