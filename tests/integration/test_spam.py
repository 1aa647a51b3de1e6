"""A flooder: records at 1,000 a second, valid ones and invalid ones, from a bare libp2p peer.

The node it floods takes a member's burst and steady rate (node/floodcontrol.py), ignores the
rest without forwarding it, and cuts the flooder off; honest records keep reaching every
node; what the flood costs the node is reported (CPU seconds, resident memory) and bounded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.nodes import NodeProcess, Spawn, wait_until
from zion.node.floodcontrol import CUT_OFF_EXCESS_RECORDS

ROOT = Path(__file__).resolve().parents[2]
RATE = 1000
#: [gossip] peer_records_per_s and peer_records_burst, the defaults.
BUDGET_RATE, BUDGET_BURST = 100, 1000
CUT_OFF_TIMEOUT_S = 30.0
GOSSIP_ONLY = "[sync]\ninterval_s = 3600\n"
HONEST_TIMEOUT_S = 30.0
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(node: NodeProcess) -> float:
    assert node.process is not None
    fields = Path(f"/proc/{node.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mib(node: NodeProcess) -> float:
    assert node.process is not None
    pages = int(Path(f"/proc/{node.process.pid}/statm").read_text().split()[1])
    return pages * PAGE / 2**20


class Spammer:
    def __init__(self, target: NodeProcess, mode: str) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.raw_spammer",
                target.address,
                mode,
                str(RATE),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        assert first.startswith("flooding as "), first
        self.peer_id = first.split()[-1]

    def wait_cut_off(self) -> tuple[float, int]:
        """Seconds until the target cut it off, and the records it had sent by then."""
        started = time.monotonic()
        try:
            out, _ = self.process.communicate(timeout=CUT_OFF_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"not cut off within {CUT_OFF_TIMEOUT_S} s") from None
        last = out.strip().splitlines()[-1]
        assert last.startswith("disconnected after "), out
        return time.monotonic() - started, int(last.split()[-1])


def test_a_flooder_is_held_to_its_budget_then_cut_off(spawn: Spawn) -> None:
    # Gossip only: honest records must get through the flood by gossip, not by a later sync.
    a = spawn("a", config=GOSSIP_ONLY)
    b = spawn("b", bootstrap=[a.address], config=GOSSIP_ONLY)
    c = spawn("c", bootstrap=[a.address, b.address], config=GOSSIP_ONLY)
    wait_until(lambda: a.status()["peers"] >= 2 and b.status()["peers"] >= 2, 20, "a full mesh")
    cpu_before, rss_before = cpu_seconds(a), rss_mib(a)

    spammer = Spammer(a, "valid")
    flood_started = time.monotonic()
    honest = [c.create_listing(f"honest {i}")["id"] for i in range(3)]
    elapsed, sent = spammer.wait_cut_off()
    cpu_flood = cpu_seconds(a) - cpu_before
    honest += [b.create_listing("honest after")["id"]]
    for node in (a, b, c):
        wait_until(
            lambda node=node: all(node.get_listing(i) for i in honest),
            HONEST_TIMEOUT_S,
            f"honest listings on {node.name}",
        )

    status = a.status()
    assert status["banned_peers"] == 1
    assert not a.connected_to(spammer.peer_id)
    # Cut off once its excess passed the limit: a few seconds at this rate.
    assert sent >= BUDGET_BURST + CUT_OFF_EXCESS_RECORDS
    assert elapsed < 15, elapsed
    # What a stored and passed on is its budget, not the flood.
    assert status["gossip_over_budget"] >= CUT_OFF_EXCESS_RECORDS
    taken = status["listings"] - len(honest)
    budget = BUDGET_BURST + BUDGET_RATE * (time.monotonic() - flood_started) + 100
    assert taken <= budget, (taken, budget)
    for node in (b, c):
        assert node.status()["listings"] - len(honest) <= taken

    # Once cut off, the flood costs a nothing more.
    wait_until(lambda: a.status()["gossip_over_budget"] == status["gossip_over_budget"], 5, "calm")
    idle_start = cpu_seconds(a)
    time.sleep(3)  # a measurement window, not synchronisation
    idle_cpu = (cpu_seconds(a) - idle_start) / 3
    rss_after = rss_mib(a)
    print(
        f"\nflood of {sent} records at {RATE}/s: cut off after {elapsed:.1f} s;"
        f" a spent {cpu_flood:.2f} CPU s ({cpu_flood / elapsed:.0%} of a core) during it,"
        f" {idle_cpu:.0%} of a core after; RSS {rss_before:.0f} -> {rss_after:.0f} MiB;"
        f" stored {taken} of the flood"
    )
    assert idle_cpu < 0.3
    assert rss_after - rss_before < 100


def test_a_flood_of_invalid_records_is_cut_off_at_once(spawn: Spawn) -> None:
    a = spawn("a")
    cpu_before = cpu_seconds(a)
    spammer = Spammer(a, "invalid")
    elapsed, sent = spammer.wait_cut_off()
    status = a.status()
    print(
        f"\ninvalid flood: cut off after {elapsed:.1f} s and {sent} records;"
        f" a spent {cpu_seconds(a) - cpu_before:.2f} CPU s"
    )
    assert status["banned_peers"] == 1
    assert status["listings"] == 0
    assert elapsed < 10
