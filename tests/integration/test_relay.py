"""A seed's circuit relay v2 service: members reserve slots within its limits, and a peer
that cannot dial a member directly reaches it through the seed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from libp2p.relay.circuit_v2.protocol_buffer import StatusCode

from tests.integration.nodes import NodeProcess, Spawn, wait_until
from tests.integration.test_discovery import closed_port

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 30
#: AutoNAT's first answer (retries after 10 s), a relay check (every 10 s) and a DHT round.
RELAY_TIMEOUT_S = 60
#: A short circuit duration ([relay] circuit_duration_s) for the test.
CIRCUIT_S = 3
PER_IP_CONFIG = "[relay]\nmax_reservations_per_ip = 1\n"


@contextmanager
def relay_client(relay: NodeProcess, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A raw relay client (raw_relay_client.py); yields it and its peer ID."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.raw_relay_client", relay.address, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("peer "), first
        yield process, first.split()[1]
    finally:
        process.kill()
        process.wait(timeout=10)


def next_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.readline().strip()


def test_a_seed_relays_within_its_reservation_limit(spawn: Spawn) -> None:
    seed = spawn(
        "seed",
        extra=["--profile", "seed", "--metrics", "127.0.0.1:0"],
        config=f"[relay]\nmax_reservations = 1\ncircuit_duration_s = {CIRCUIT_S}\n",
    )
    with relay_client(seed, "reserve") as (member, member_id):
        assert next_line(member) == "reserved"
        with relay_client(seed, "reserve") as (second, _):
            assert next_line(second) == "refused"  # the limit: one slot
        idle = str(CIRCUIT_S + 2)
        with relay_client(seed, "dial", member_id, idle) as (dialer, _):
            out, _ = dialer.communicate(timeout=TIMEOUT_S)
            lines = out.strip().splitlines()
            assert lines[0] == "echo hello"
            # An idle circuit ends at its duration limit all the same.
            assert lines[1] == "closed", lines
    # The slot comes back when its holder is gone (py-libp2p would keep it for an hour).
    wait_until(lambda: reserve_once(seed) == "reserved", TIMEOUT_S, "the slot to come back")


def test_members_offer_no_relay(spawn: Spawn) -> None:
    member = spawn("member")
    with relay_client(member, "reserve") as (client, _):
        assert next_line(client).startswith("no relay:")


def test_a_member_that_cannot_be_dialed_is_reached_through_the_seed(spawn: Spawn) -> None:
    seed = spawn("seed", extra=["--profile", "seed", "--metrics", "127.0.0.1:0"])
    # Announces an address nobody listens on, as a member behind NAT would its private one;
    # wants no more than the seed, so it dials nobody itself.
    hidden = spawn(
        "hidden",
        bootstrap=[seed.address],
        config=f'[network]\nannounce = ["/ip4/127.0.0.1/tcp/{closed_port()}"]\nmin_peers = 1\n',
    )
    relayed = wait_until(
        lambda: hidden.status()["relayed_addrs"],
        RELAY_TIMEOUT_S,
        "AutoNAT to find the member private and the seed to give it a slot",
    )
    assert hidden.status()["reachability"] == "private"
    assert all(f"/p2p/{seed.peer_id}/p2p-circuit" in addr for addr in relayed)
    # zion doctor tells its user, and what to do.
    doctor = subprocess.run(
        [sys.executable, "-m", "zion", "--home", str(hidden.home), "doctor"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert "WARN  reachable peers cannot dial this node" in doctor.stdout, doctor.stdout
    assert f"through {len(relayed)} relayed addresses" in doctor.stdout
    assert "[network] announce" in doctor.stdout
    assert "ok    peers" in doctor.stdout or "WARN  peers" in doctor.stdout

    finder = spawn("finder", bootstrap=[seed.address])
    hidden_id = hidden.peer_id
    wait_until(lambda: finder.connected_to(hidden_id), RELAY_TIMEOUT_S, "the finder to reach it")
    assert finder.status()["discovery"]["found_by_dht"] >= 1
    assert hidden.status()["discovery"]["found_by_dht"] == 0  # it did not dial the finder
    listing = finder.create_listing("Through the relay")
    wait_until(lambda: hidden.get_listing(listing["id"]), 20, "the listing to reach it")


def test_a_seed_holds_reservations_per_ip_and_only_for_the_peer_asking(spawn: Spawn) -> None:
    seed = spawn("seed", extra=["--profile", "seed"], config=PER_IP_CONFIG)
    with relay_client(seed, "reserve-for-another") as (other, _):
        assert next_line(other) == f"refused {int(StatusCode.PERMISSION_DENIED)}"
    with relay_client(seed, "reserve") as (member, _):
        assert next_line(member) == "reserved"
        # Every client here connects from 127.0.0.1: the seed has slots, the IP has none.
        with relay_client(seed, "reserve") as (second, _):
            assert next_line(second) == "refused"
    # The slot comes back when its holder is gone.
    wait_until(lambda: reserve_once(seed) == "reserved", TIMEOUT_S, "the IP's slot to come back")


def reserve_once(seed: NodeProcess) -> str:
    with relay_client(seed, "reserve") as (client, _):
        return next_line(client)
