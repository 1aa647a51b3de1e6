"""A seed's circuit relay v2 service: members reserve slots within its limits, per IP and
only for themselves, and a peer reaches a member through it. (A member behind a real NAT
found private and reached through the seed: tests/integration/test_nat.py.)"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from libp2p.relay.circuit_v2.protocol_buffer import StatusCode

from tests.integration.nodes import NodeProcess, Spawn, wait_until

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
