"""The AutoNAT server's choice of what to dial back (node/network_nat.at_observed_ip)."""

from __future__ import annotations

import multiaddr

from zion.node.network_nat import at_observed_ip

RELAY = "12D3KooWLqpQj53UiZWd7SxSN31Gv6AmNHy33xnCcYz8K3J7z7pq"


def raw(address: str) -> bytes:
    return bytes(multiaddr.Multiaddr(address).to_bytes())


def text(addresses: list[bytes]) -> list[str]:
    return [str(multiaddr.Multiaddr(address)) for address in addresses]


def test_advertised_ports_are_dialed_at_the_ip_the_request_came_from() -> None:
    # Behind NAT a node advertises its private address; the server sees its router's.
    advertised = [raw("/ip4/10.98.0.2/tcp/4001"), raw("/ip4/127.0.0.1/tcp/4001")]
    assert text(at_observed_ip(advertised, "203.0.113.7")) == ["/ip4/203.0.113.7/tcp/4001"]
    assert text(at_observed_ip(advertised, "2001:db8::7")) == ["/ip6/2001:db8::7/tcp/4001"]


def test_relayed_other_transports_and_junk_are_not_dialed() -> None:
    advertised = [
        raw(f"/ip4/198.51.100.1/tcp/4001/p2p/{RELAY}/p2p-circuit"),
        raw("/ip4/10.98.0.2/udp/4001/quic-v1"),
        raw("/dns4/example.com/tcp/4001"),
        b"\xff\x00junk",
    ]
    assert at_observed_ip(advertised, "203.0.113.7") == []
