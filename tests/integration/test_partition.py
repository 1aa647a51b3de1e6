"""A network partition made of Linux network namespaces, and its healing.

Two halves of three nodes each run in two network namespaces made by the test (``ip netns``),
joined by one veth pair: the only way between them. Each namespace also has a veth pair to the
root namespace, through which the test reads the nodes' HTTP gateways (they listen on that
address with ``[gateway] allow_remote``, so every request carries the API token).

The nodes form one network; the link goes down; both halves publish on their own and must not
see each other's records; the connections across the cut die; the link comes back, and every
node must have everything within 30 s, the nodes reconnecting by themselves.

What it exercises: b1 redials its lost bootstrap peer a1 (node/discovery.py, every 10 s while
short of peers; py-libp2p's own auto-connector waits 60 s after a disconnect), a1 and b1 sync
on the new connection, and the other four get the other half's records from a1 or b1: by their
next periodic sync with them ([sync] interval_s), unless what sync stores is gossiped on.

Needs root and iproute2's ``ip`` (tests/integration/netns.py).
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.integration.netns import GATEWAY_CONFIG, Lab, ip, require_namespaces, spawn_options
from tests.integration.nodes import NodeProcess, spawned_nodes, wait_until

#: The link between the halves: it exists inside the two namespaces only.
LINK_NET = ipaddress.ip_network("10.99.0.0/24")
#: A partition that outlasts TCP's retransmissions kills the connections across it: by default
#: after ~15 min (net.ipv4.tcp_retries2 = 15). The setting is per network namespace: in the
#: test's two, connections with unacknowledged data die after ~3 s, so the nodes have to
#: reconnect by themselves once the link is back.
TCP_RETRIES2 = 3
CONVERGE_S = 30.0
#: Each node and the one it bootstraps from, as members join through one they know: a tree,
#: in which a1-b1 is the only connection across the link.
TOPOLOGY = [("a1", ""), ("a2", "a1"), ("a3", "a1"), ("b1", "a1"), ("b2", "b1"), ("b3", "b1")]


@dataclass
class Half:
    name: str
    namespace: str
    #: This half's address on the link, and the link's interface in the namespace.
    link_ip: str
    link_dev: str
    #: The namespace's end of the gateway veth pair, reachable from the root namespace.
    gateway_ip: str
    nodes: list[NodeProcess] = field(default_factory=list)

    def spawn_options(self) -> dict[str, Any]:
        return {
            "config": GATEWAY_CONFIG,
            **spawn_options(self.namespace, self.link_ip, self.gateway_ip),
        }


@dataclass
class Link:
    a: Half
    b: Half

    def cut(self) -> None:
        ip(f"-n {self.a.namespace} link set {self.a.link_dev} down")

    def restore(self) -> None:
        ip(f"-n {self.a.namespace} link set {self.a.link_dev} up")


@contextlib.contextmanager
def two_linked_namespaces() -> Iterator[Link]:
    """Two new network namespaces joined by a veth pair; deleted on exit, whatever happened."""
    with Lab() as lab:
        namespaces = [lab.namespace(side) for side in "ab"]
        for namespace in namespaces:
            lab.sysctl(namespace, "net/ipv4/tcp_retries2", TCP_RETRIES2)
        link_ips = [str(LINK_NET.network_address + n) for n in (1, 2)]
        prefix = LINK_NET.prefixlen
        devs = lab.link(
            namespaces[0], f"{link_ips[0]}/{prefix}", namespaces[1], f"{link_ips[1]}/{prefix}"
        )
        yield Link(
            *(
                Half(side, namespace, link_ip, dev, lab.reach_from_root(namespace))
                for side, namespace, link_ip, dev in zip(
                    "ab", namespaces, link_ips, devs, strict=True
                )
            )
        )


def _peers(node: NodeProcess) -> set[str]:
    return {p["peer_id"] for p in node.api.get("/api/v1/peers").json()["items"]}


def _records(node: NodeProcess) -> set[str]:
    return node.listing_ids() | node.message_ids("general")


def _post_message(node: NodeProcess, text: str) -> str:
    response = node.api.post("/api/v1/channels/general/messages", json={"text": text})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_partitioned_halves_converge_within_30_s_of_the_link_coming_back(tmp_path: Path) -> None:
    require_namespaces("the partition test")
    with two_linked_namespaces() as link, spawned_nodes(tmp_path) as spawn:
        a, b = link.a, link.b
        started: dict[str, NodeProcess] = {}
        for name, entry in TOPOLOGY:
            half = a if name.startswith("a") else b
            bootstrap = [started[entry].address] if entry else None
            started[name] = spawn(name, bootstrap=bootstrap, **half.spawn_options())
            half.nodes.append(started[name])
        nodes = a.nodes + b.nodes
        name_of = {node.peer_id: node.name for node in nodes}
        peers_in = {h.name: {p for p, n in name_of.items() if n[0] == h.name} for h in (a, b)}

        def connected_across() -> dict[str, set[str]]:
            """Each node's peers in the other half, by name."""
            return {
                n.name: {name_of[p] for p in _peers(n) & peers_in["b" if n in a.nodes else "a"]}
                for n in nodes
            }

        first = a.nodes[0].create_listing("Before the partition")["id"]
        wait_until(lambda: all(first in n.listing_ids() for n in nodes), 15, "a first listing")
        assert connected_across()["a1"] == {"b1"}

        link.cut()
        cut_at = time.monotonic()
        made: dict[str, set[str]] = {}
        for half in (a, b):
            made[half.name] = {
                n.create_listing(f"From {n.name}, #{k}")["id"] for n in half.nodes for k in range(2)
            }
            made[half.name].add(_post_message(half.nodes[-1], f"Hello from {half.name}"))
        for half in (a, b):
            for node in half.nodes:
                wait_until(
                    lambda n=node, h=half.name: made[h] <= _records(n),
                    15,
                    f"{node.name} to have what its half published",
                )
        wait_until(
            lambda: not any(connected_across().values()),
            45,
            "the connections across the cut to die",
            interval=0.5,
        )
        # Partitioned indeed: nothing crossed while the connections lived on after the cut.
        for half, other in ((a, b), (b, a)):
            for node in half.nodes:
                leaked = made[other.name] & _records(node)
                assert not leaked, f"{node.name} has {len(leaked)} records of the other half"
        partitioned_s = time.monotonic() - cut_at

        link.restore()
        restored_at = time.monotonic()
        everything = made["a"] | made["b"] | {first}
        reconnected: dict[str, float] = {}
        converged: dict[str, float] = {}

        def all_converged() -> bool:
            now = time.monotonic() - restored_at
            for name, peers in connected_across().items():
                if peers and name not in reconnected:
                    reconnected[name] = now
            for node in nodes:
                if node.name not in converged and everything <= _records(node):
                    converged[node.name] = now
            return len(converged) == len(nodes)

        try:
            wait_until(all_converged, CONVERGE_S, "every node to have every record", 0.25)
        finally:
            print(
                f"\npartitioned for {partitioned_s:.1f}s; after the link came back:"
                f" reconnected {_seconds(reconnected)}; converged {_seconds(converged)}"
            )
        assert reconnected, "the halves converged without reconnecting?"


def _seconds(times: dict[str, float]) -> str:
    return ", ".join(f"{name} {t:.1f}s" for name, t in sorted(times.items())) or "none"
