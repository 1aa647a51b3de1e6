"""Members behind real NATs: AutoNAT finds a member private, it takes a slot at the seed's
relay, a member that cannot dial it reaches it through the seed, and two members behind two
NATs end up connected directly (hole punching).

Network namespaces made by the test (tests/integration/netns.py):
- ``internet``: the seed and a public member at 10.99.0.1 (on its loopback), routing between
  the routers' networks;
- ``router-a`` and ``router-b``: home routers at 10.99.1.254 and 10.99.2.254, masquerading
  their home's connections behind that address (nftables) and dropping connections from
  outside, as home routers do;
- ``home-a`` and ``home-b``: a member each, at 10.98.1.2 and 10.98.2.2, routed through their
  router.
No node is told it is behind NAT: each advertises its private address, and others see its
router's.

Needs root, iproute2's ``ip`` and nftables' ``nft``: dev.sh installs both for the tests.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.integration.netns import GATEWAY_CONFIG, Lab, require_namespaces, run, spawn_options
from tests.integration.nodes import NodeProcess, spawned_nodes, wait_until

SEED_IP = "10.99.0.1"
#: AutoNAT's first answer (retries after 10 s), a relay check (every 10 s) and a DHT round.
RELAY_TIMEOUT_S = 60.0
#: DCUtR's loop looks for relayed-only peers every 2 s, first tries the peer's advertised
#: (private) addresses for 10 s, then punches.
HOLE_PUNCH_TIMEOUT_S = 45.0
GOSSIP_TIMEOUT_S = 20.0
COMMAND_TIMEOUT_S = 30.0
ZION = [sys.executable, "-m", "zion"]
#: A home router: the home's connections leave masqueraded as the router's own address; from
#: outside only replies come in, and anything else is dropped without an answer (a reset
#: from the router would end a hole punch's first packet, and the punch with it).
ROUTER_RULES = """
table ip nat {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname "{outside}" masquerade
  }}
}}
table ip filter {{
  chain forward {{
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "{inside}" accept
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname "{outside}" ct state established,related accept
    iifname "{outside}" drop
  }}
}}
"""


@dataclass
class Home:
    namespace: str
    #: The member's address in its home, and its router's on the internet.
    member_ip: str
    router_ip: str
    #: Where the root namespace reaches the gateways of nodes in this namespace.
    gateway_ip: str


@dataclass
class Internet:
    namespace: str
    gateway_ip: str
    homes: list[Home]


@contextmanager
def two_homes_behind_nat() -> Iterator[Internet]:
    with Lab() as lab:
        internet = lab.namespace("internet")
        ip("-n", internet, "addr", "add", f"{SEED_IP}/32", "dev", "lo")
        lab.sysctl(internet, "net/ipv4/ip_forward", 1)
        homes = []
        for number, name in enumerate("ab", start=1):
            router, home = lab.namespace(f"router-{name}"), lab.namespace(f"home-{name}")
            internet_side, router_ip = f"10.99.{number}.1", f"10.99.{number}.254"
            router_home_ip, member_ip = f"10.98.{number}.1", f"10.98.{number}.2"
            _, outside = lab.link(internet, f"{internet_side}/24", router, f"{router_ip}/24")
            inside, _ = lab.link(router, f"{router_home_ip}/24", home, f"{member_ip}/24")
            ip("-n", router, "route", "add", "default", "via", internet_side)
            ip("-n", home, "route", "add", "default", "via", router_home_ip)
            lab.sysctl(router, "net/ipv4/ip_forward", 1)
            subprocess.run(
                ["ip", "netns", "exec", router, "nft", "-f", "-"],
                input=ROUTER_RULES.format(outside=outside, inside=inside),
                text=True,
                check=True,
                capture_output=True,
                timeout=COMMAND_TIMEOUT_S,
            )
            homes.append(Home(home, member_ip, router_ip, lab.reach_from_root(home)))
        yield Internet(internet, lab.reach_from_root(internet), homes)


def ip(*words: str) -> str:
    return run("ip", *words)


def port_of(node: NodeProcess) -> str:
    return node.address.split("/tcp/")[1].split("/")[0]


def direct_addrs(node: NodeProcess, peer_id: str) -> list[str]:
    """The addresses of ``node``'s connections to ``peer_id`` that go through no relay."""
    for peer in node.api.get("/api/v1/peers").json()["items"]:
        if peer["peer_id"] == peer_id:
            return [a for a in peer["connections"] if "/p2p-circuit" not in a]
    return []


def test_members_behind_nat_are_reached_through_the_seed_then_directly(tmp_path: Path) -> None:
    require_namespaces("the NAT test", ("ip", "nft"))
    with two_homes_behind_nat() as net, spawned_nodes(tmp_path) as spawn:
        outside = spawn_options(net.namespace, SEED_IP, net.gateway_ip)
        seed = spawn("seed", config=GATEWAY_CONFIG, extra=["--profile", "seed"], **outside)
        # Each wants no more peers than the seed: it dials nobody else itself.
        home_a, home_b = net.homes
        alice, bob = (
            spawn(
                name,
                bootstrap=[seed.address],
                config=GATEWAY_CONFIG + "[network]\nmin_peers = 1\n",
                **spawn_options(home.namespace, home.member_ip, home.gateway_ip),
            )
            for name, home in (("alice", home_a), ("bob", home_b))
        )
        public = spawn("public", bootstrap=[seed.address], config=GATEWAY_CONFIG, **outside)

        relayed = wait_until(
            lambda: alice.status()["relayed_addrs"],
            RELAY_TIMEOUT_S,
            "AutoNAT to find alice private and the seed to give her a slot",
        )
        assert alice.status()["reachability"] == "private"
        assert all(f"/p2p/{seed.peer_id}/p2p-circuit" in addr for addr in relayed)
        # The same question answered the other way for a member the seed can dial back.
        wait_until(lambda: public.status()["reachability"] == "public", RELAY_TIMEOUT_S, "public")
        # A real NAT: the seed's connection from alice comes from her router, and her own
        # address cannot be reached from the internet at all.
        sockets = " ".join(
            run("ip", "netns", "exec", net.namespace, "ss", "-tnH", "state", "established").split()
        )
        assert f"{SEED_IP}:{port_of(seed)} {home_a.router_ip}:" in sockets, sockets
        assert home_a.member_ip not in sockets
        probe = (
            f"import socket; socket.create_connection(('{home_a.member_ip}', {port_of(alice)}), 3)"
        )
        dial = subprocess.run(
            ["ip", "netns", "exec", net.namespace, sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
        )
        assert dial.returncode != 0 and "unreachable" in dial.stderr, dial.stderr

        # The public member finds alice in the DHT, at her relayed address only.
        # (found_by_dht counts a lookup's dials once they have all ended)
        wait_until(
            lambda: (
                public.connected_to(alice.peer_id)
                and public.status()["discovery"]["found_by_dht"] >= 1
            ),
            RELAY_TIMEOUT_S,
            "the public member to reach alice",
        )
        assert alice.status()["discovery"]["found_by_dht"] == 0  # she dialed no one
        listing = public.create_listing("Across the NAT")
        wait_until(lambda: alice.get_listing(listing["id"]), GOSSIP_TIMEOUT_S, "the listing")

        # zion doctor tells alice, and what to do about it.
        doctor = subprocess.run(
            ["ip", "netns", "exec", home_a.namespace, *ZION, "--home", str(alice.home), "doctor"],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
        )
        assert "WARN  reachable peers cannot dial this node" in doctor.stdout, doctor.stdout
        assert "[network] announce" in doctor.stdout

        # Bob, behind the other NAT, dials alice through the seed; hole punching then gives
        # them a direct connection: from bob's side, one from alice's router.
        through_seed = f"{relayed[0]}/p2p/{alice.peer_id}"
        response = bob.api.post("/api/v1/peers", json={"multiaddr": through_seed})
        assert response.status_code == 200, response.text
        relayed_at = time.monotonic()
        direct = wait_until(
            lambda: direct_addrs(bob, alice.peer_id),
            HOLE_PUNCH_TIMEOUT_S,
            "a direct connection between the two homes",
        )
        print(f"\nhole punched {time.monotonic() - relayed_at:.1f} s after the relayed dial")
        assert any(f"/ip4/{home_a.router_ip}/tcp/" in addr for addr in direct), direct
        assert any(f"/ip4/{home_b.router_ip}/tcp/" in a for a in direct_addrs(alice, bob.peer_id))
