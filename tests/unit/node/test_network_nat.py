"""What the NAT pieces of node/network_nat.py let a stranger make a node dial, and how they
count askers."""

from __future__ import annotations

import multiaddr

from zion.node.network_nat import MAX_PUNCH_ADDRS, GuardedHolePunching, at_observed_ip, ip_key

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


def test_per_ip_limits_count_an_ipv6_host_by_its_slash_64() -> None:
    assert ip_key("203.0.113.7") == "203.0.113.7"
    assert ip_key("::ffff:203.0.113.7") == "203.0.113.7"  # a dual-stack listener's view
    assert ip_key("2001:db8:1:2::7") == ip_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert ip_key("2001:db8:1:3::7") != ip_key("2001:db8:1:2::7")


def test_a_hole_punching_peer_gets_at_most_four_plain_tcp_addresses_dialed() -> None:
    named = [raw(f"/ip4/198.51.{n // 250}.{n % 250 + 1}/tcp/4001") for n in range(400)]
    named[:0] = [raw("/ip4/198.51.100.9/tcp/443/ws"), raw("/dns4/victim.example/tcp/80")]
    punching = GuardedHolePunching.__new__(GuardedHolePunching)  # the filter needs no host
    dialed = text(punching._decode_observed_addrs(named))
    assert dialed == [f"/ip4/198.51.0.{n}/tcp/4001" for n in range(1, MAX_PUNCH_ADDRS + 1)]
