"""A member behind a real NAT: AutoNAT finds it private, it takes a slot at the seed's relay,
and a member that cannot dial it reaches it through the seed.

Three network namespaces made by the test (tests/integration/netns.py):
- ``internet``: the seed and a public member, on 10.99.0.0/24;
- ``router``: a home router between the two, masquerading the home's connections behind its
  internet address (nftables) and dropping connections from outside, as home routers do;
- ``home``: the member behind it, at 10.98.0.2, its default route through the router.
No node is told it is behind NAT: it advertises its private address, the seed sees the
router's.

Needs root, iproute2's ``ip`` and nftables' ``nft``: dev.sh installs both for the tests.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.integration.netns import GATEWAY_CONFIG, Lab, require_namespaces, run, spawn_options
from tests.integration.nodes import spawned_nodes, wait_until

#: The internet (10.99.0.0/24; the seed and the public member share an address) and the home
#: network (10.98.0.0/24).
SEED_IP, ROUTER_PUBLIC_IP = "10.99.0.1", "10.99.0.254"
ROUTER_HOME_IP, MEMBER_IP = "10.98.0.1", "10.98.0.2"
#: AutoNAT's first answer (retries after 10 s), a relay check (every 10 s) and a DHT round.
RELAY_TIMEOUT_S = 60.0
GOSSIP_TIMEOUT_S = 20.0
DOCTOR_TIMEOUT_S = 30.0
ZION = [sys.executable, "-m", "zion"]
#: The router: the home's connections leave masqueraded as the router's internet address;
#: from the internet, only replies to them come in.
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
}}
"""


@dataclass
class Internet:
    internet: str
    home: str
    #: Where the root namespace reaches the gateways of each side's nodes.
    internet_gateway_ip: str
    home_gateway_ip: str


@contextmanager
def home_behind_nat() -> Iterator[Internet]:
    with Lab() as lab:
        internet, router, home = (lab.namespace(n) for n in ("internet", "router", "home"))
        _, outside = lab.link(internet, f"{SEED_IP}/24", router, f"{ROUTER_PUBLIC_IP}/24")
        inside, _ = lab.link(router, f"{ROUTER_HOME_IP}/24", home, f"{MEMBER_IP}/24")
        run("ip", "-n", home, "route", "add", "default", "via", ROUTER_HOME_IP)
        lab.sysctl(router, "net/ipv4/ip_forward", 1)
        rules = ROUTER_RULES.format(outside=outside, inside=inside)
        subprocess.run(
            ["ip", "netns", "exec", router, "nft", "-f", "-"],
            input=rules,
            text=True,
            check=True,
            capture_output=True,
            timeout=30,
        )
        yield Internet(internet, home, lab.reach_from_root(internet), lab.reach_from_root(home))


def test_a_member_behind_nat_is_found_private_and_reached_through_the_seed(
    tmp_path: Path,
) -> None:
    require_namespaces("the NAT test", ("ip", "nft"))
    with home_behind_nat() as net, spawned_nodes(tmp_path) as spawn:
        outside = spawn_options(net.internet, SEED_IP, net.internet_gateway_ip)
        seed = spawn("seed", config=GATEWAY_CONFIG, extra=["--profile", "seed"], **outside)
        # Wants no more peers than the seed: it dials nobody else itself.
        member = spawn(
            "member",
            bootstrap=[seed.address],
            config=GATEWAY_CONFIG + "[network]\nmin_peers = 1\n",
            **spawn_options(net.home, MEMBER_IP, net.home_gateway_ip),
        )
        public = spawn("public", bootstrap=[seed.address], config=GATEWAY_CONFIG, **outside)

        relayed = wait_until(
            lambda: member.status()["relayed_addrs"],
            RELAY_TIMEOUT_S,
            "AutoNAT to find the member private and the seed to give it a slot",
        )
        assert member.status()["reachability"] == "private"
        assert all(f"/p2p/{seed.peer_id}/p2p-circuit" in addr for addr in relayed)
        # The same question answered the other way for a member the seed can dial back.
        wait_until(lambda: public.status()["reachability"] == "public", RELAY_TIMEOUT_S, "public")
        # A real NAT: the seed's connection from the member comes from the router, and the
        # member's own address cannot be reached from the internet at all.
        seed_port = seed.address.split("/tcp/")[1].split("/")[0]
        sockets = run("ip", "netns", "exec", net.internet, "ss", "-tnH", "state", "established")
        assert f"{SEED_IP}:{seed_port} {ROUTER_PUBLIC_IP}:" in " ".join(sockets.split()), sockets
        assert MEMBER_IP not in sockets
        member_port = member.address.split("/tcp/")[1].split("/")[0]
        probe = f"import socket; socket.create_connection(('{MEMBER_IP}', {member_port}), 3)"
        dial = subprocess.run(
            ["ip", "netns", "exec", net.internet, sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            timeout=DOCTOR_TIMEOUT_S,
        )
        assert dial.returncode != 0 and "unreachable" in dial.stderr, dial.stderr

        wait_until(
            lambda: public.connected_to(member.peer_id),
            RELAY_TIMEOUT_S,
            "the public member to reach the member behind NAT",
        )
        assert public.status()["discovery"]["found_by_dht"] >= 1
        assert member.status()["discovery"]["found_by_dht"] == 0  # it did not dial the public one
        listing = public.create_listing("Across the NAT")
        wait_until(lambda: member.get_listing(listing["id"]), GOSSIP_TIMEOUT_S, "the listing")

        doctor = subprocess.run(
            ["ip", "netns", "exec", net.home, *ZION, "--home", str(member.home), "doctor"],
            capture_output=True,
            text=True,
            timeout=DOCTOR_TIMEOUT_S,
        )
        # zion doctor tells its user, and what to do about it.
        assert "WARN  reachable peers cannot dial this node" in doctor.stdout, doctor.stdout
        assert f"through {len(relayed)} relayed addresses" in doctor.stdout
        assert "[network] announce" in doctor.stdout
