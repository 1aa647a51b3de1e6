"""FloodControl: budgets per origin and per forwarder, counted in records; who is cut off.
InvalidGossipTally: invalid messages per peer, bounded."""

from __future__ import annotations

from zion.node.floodcontrol import (
    CUT_OFF_EXCESS_RECORDS,
    EXCESS_WINDOW_S,
    FORWARDER_FACTOR,
    Admission,
    FloodControl,
    InvalidGossipTally,
)


def test_a_burst_is_taken_then_the_steady_rate() -> None:
    flood = FloodControl(records_per_s=100, burst=1000)
    assert flood.admit("p", "p", 1000, now=0.0) is Admission.ADMIT
    assert flood.admit("p", "p", 1, now=0.0) is Admission.OVER_BUDGET
    assert flood.admit("p", "p", 100, now=1.0) is Admission.ADMIT
    assert flood.admit("p", "p", 10, now=1.0) is Admission.OVER_BUDGET
    assert flood.over_budget_records == 11


def test_a_peer_flooding_under_its_own_name_is_cut_off() -> None:
    flood = FloodControl(records_per_s=100, burst=1000)
    now, outcomes = 0.0, []
    while (outcome := flood.admit("spammer", "spammer", 100, now)) is not Admission.CUT_OFF:
        outcomes.append(outcome)
        now += 0.1  # 1000 records/s
        assert now < EXCESS_WINDOW_S, "never cut off"
    assert outcomes[0] is Admission.ADMIT
    # Cut off once its shortfall passed the limit: 1 s of burst, then about 2.2 s at 1000/s
    # (of each 100 records, ~10 fit the refill and ~90 count).
    assert flood.over_budget_records >= CUT_OFF_EXCESS_RECORDS
    assert now < 6.0


def test_excess_spread_over_windows_is_not_cut_off() -> None:
    flood = FloodControl(records_per_s=1, burst=1)
    for window in range(5):
        now = window * (EXCESS_WINDOW_S + 1)
        for _ in range(CUT_OFF_EXCESS_RECORDS // 2):
            assert flood.admit("slow", "slow", 1, now) is not Admission.CUT_OFF


def test_a_forwarder_is_held_to_its_budget_but_not_cut_off() -> None:
    flood = FloodControl(records_per_s=10, burst=10)
    # An honest peer forwarding for many origins: each within its own budget.
    admitted = sum(
        flood.admit("relay", f"origin-{i}", 10, now=0.0) is Admission.ADMIT for i in range(20)
    )
    assert admitted == FORWARDER_FACTOR
    for i in range(10_000):
        assert flood.admit("relay", f"origin-{i}", 10, now=0.0) is not Admission.CUT_OFF


def test_one_origin_is_limited_whoever_forwards_it() -> None:
    flood = FloodControl(records_per_s=10, burst=10)
    assert flood.admit("a", "author", 10, now=0.0) is Admission.ADMIT
    assert flood.admit("b", "author", 1, now=0.0) is Admission.OVER_BUDGET


def test_a_refusal_by_one_budget_takes_nothing_from_the_other() -> None:
    flood = FloodControl(records_per_s=10, burst=100)
    # A forwarder that spent its budget relays an honest author's batches: all refused...
    for i in range(FORWARDER_FACTOR):
        assert flood.admit("relay", f"other-{i}", 100, now=0.0) is Admission.ADMIT
    for _ in range(10):
        assert flood.admit("relay", "author", 100, now=0.0) is Admission.OVER_BUDGET
    # ...and the author's own budget is untouched.
    assert flood.admit("author", "author", 100, now=0.0) is Admission.ADMIT


def test_copies_of_what_we_hold_cost_nothing() -> None:
    flood = FloodControl(records_per_s=1, burst=1)
    for _ in range(10_000):
        assert flood.admit("replayer", "honest", 0, now=0.0) is Admission.ADMIT
    assert flood.admit("honest", "honest", 1, now=0.0) is Admission.ADMIT


def test_a_peer_is_cut_off_at_its_limit_of_invalid_messages() -> None:
    tally = InvalidGossipTally(limit=3)
    assert [tally.count("bad") for _ in range(3)] == [False, False, True]
    assert tally.count("bad") is False  # after the ban, a fresh tally


def test_the_tally_forgets_the_least_recent_peers_beyond_its_bound() -> None:
    tally = InvalidGossipTally(limit=3, max_peers=100)
    tally.count("old")
    tally.count("old")
    for number in range(1000):
        tally.count(f"fresh-{number}")
    assert len(tally) == 100
    assert tally.count("old") is False  # forgotten: counting again from one
    tally.count("recent")
    tally.count("fresh-999")
    assert tally.count("recent") is False
    assert tally.count("fresh-999") is True
