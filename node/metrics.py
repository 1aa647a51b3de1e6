"""Prometheus metrics (`[metrics] listen`, `zion run --metrics`): what a seed operator watches.

Values are read from the node when Prometheus scrapes (a custom collector), so nothing is
counted twice and an idle node does no work for its metrics. The endpoint is its own small
ASGI app on its own port, apart from the gateway and its token: Prometheus scrapes without
one, so keep the port on loopback or a private network.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, Final

import trio
from prometheus_client import CollectorRegistry, make_asgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from zion.gateway.server import serve_asgi

log = logging.getLogger(__name__)

PREFIX: Final = "zion"


class NodeCollector(Collector):
    """Reads ``status()`` (the node's own figures, as `zion status` shows them) per scrape."""

    def __init__(self, status: Callable[[], dict[str, Any]]) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        status = self._status()
        gauges = {
            "peers": ("connected peers", status["peers"]),
            "records": ("records stored", status["records"]),
            "listings": ("listings stored", status["listings"]),
            "blockstore_bytes": ("bytes in the IPFS blockstore", status["content"]["bytes"]),
        }
        for name, (text, value) in gauges.items():
            yield GaugeMetricFamily(f"{PREFIX}_{name}", text, value=value)
        connections = GaugeMetricFamily(
            f"{PREFIX}_connections", "established connections", labels=["direction"]
        )
        for direction in ("inbound", "outbound"):
            connections.add_metric([direction], status["connections"][direction])
        yield connections
        yield GaugeMetricFamily(
            f"{PREFIX}_connections_max",
            "the most connections allowed ([network] max_connections)",
            value=status["connection_limits"]["max_connections"],
        )
        yield GaugeMetricFamily(f"{PREFIX}_tasks", "trio tasks alive", value=status["tasks"])
        yield GaugeMetricFamily(
            f"{PREFIX}_banned_peers", "peers cut off for misbehaving", value=status["banned_peers"]
        )
        counters = {
            "gossip_accepted": ("gossip messages accepted", status["gossip_accepted"]),
            "gossip_ignored": ("gossip messages ignored", status["gossip_ignored"]),
            "gossip_rejected": ("gossip messages rejected", status["gossip_rejected"]),
            "gossip_dropped": ("own records not gossiped: queue full", status["gossip_dropped"]),
            "gossip_over_budget": (
                "gossiped records ignored: over a peer's budget",
                status["gossip_over_budget"],
            ),
            "records_published": (
                "records this node gossiped: its own, and news that sync brought in",
                status["gossiped"],
            ),
            "gossip_received_bytes": (
                "gossip payload bytes peers sent",
                status["gossip_bytes_received"],
            ),
            "gossip_forwarded": (
                "records sync brought in, gossiped on",
                status["gossip_forwarded"],
            ),
            "sync_sessions": ("sync sessions", status["sync_sessions"]),
            "sync_failures": ("sync sessions that failed", status["sync_failures"]),
            "sync_stored": ("records stored from sync", status["sync_stored"]),
            "sync_served": ("records served to peers' sync", status["sync_served"]),
        }
        for name, (text, value) in counters.items():
            yield CounterMetricFamily(f"{PREFIX}_{name}", text, value=value)


def registry_for(status: Callable[[], dict[str, Any]]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(status))
    # Memory and CPU of this process (process_resident_memory_bytes, ...), from /proc.
    ProcessCollector(registry=registry)
    return registry


async def serve_metrics(
    registry: CollectorRegistry,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve GET /metrics until cancelled; reports the base URL once listening."""
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_asgi, make_asgi_app(registry), host, port, __name__)
        task_status.started(url)
