"""How many gossiped records a node takes from each peer, and when a flooder is cut off.

Two budgets, both token buckets counted in records (a gossip message carries up to 256):
- per origin (the peer that signed the gossip message): what any one member may publish.
  Every honest node enforces it, so an honest peer never forwards more than it of one origin;
- per forwarder (the connected peer that handed it over): what one connection may cost,
  however many origins it claims (a flooder can sign messages with many keys), set higher
  because an honest peer forwards for many origins.
Only records the node does not hold yet are counted: replayed copies of a member's old
messages cost that member nothing. Records over either budget are ignored: not stored, not
forwarded. A connected peer that floods under its own name (origin = forwarder) past
CUT_OFF_EXCESS_RECORDS in one EXCESS_WINDOW_S is cut off (node/network.py bans it).
Forwarders are not cut off for excess alone: with many flooders upstream an honest forwarder
could exceed its budget too; so a flooder signing with many keys is held to the forwarder
budget for as long as it floods, not cut off. Honest nodes pace their own gossip below the
budget (node/publishing.py).
"""

from __future__ import annotations

import enum
import math
from collections import OrderedDict
from typing import Final

from zion.node.ratelimit import PeerRateLimiter

#: Excess records of its own that get a connected peer cut off, counted per window.
CUT_OFF_EXCESS_RECORDS: Final = 2000
EXCESS_WINDOW_S: Final = 60.0
#: Peers whose excess is counted; the least recently seen are forgotten first.
MAX_TRACKED_PEERS: Final = 4096
#: A forwarder may hand over this many times an origin's budget.
FORWARDER_FACTOR: Final = 4


class Admission(enum.Enum):
    ADMIT = "admit"
    OVER_BUDGET = "over-budget"
    CUT_OFF = "cut-off"


class FloodControl:
    def __init__(self, records_per_s: float, burst: int) -> None:
        self._origins = PeerRateLimiter(records_per_s, burst)
        self._forwarders = PeerRateLimiter(
            records_per_s * FORWARDER_FACTOR, burst * FORWARDER_FACTOR
        )
        #: peer -> (start of its window, excess records of its own in that window)
        self._excess: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self.over_budget_records = 0

    def admit(self, forwarder: str, origin: str, records: int, now: float) -> Admission:
        """``records``: how many this node does not hold yet (copies cost nobody: anyone can
        replay an honest member's old messages). Tokens are taken from both budgets or from
        neither, and only the shortfall counts as excess."""
        if records <= 0:
            return Admission.ADMIT
        available = min(
            self._origins.available(origin, now), self._forwarders.available(forwarder, now)
        )
        if available >= records:
            self._origins.allow(origin, now, records)
            self._forwarders.allow(forwarder, now, records)
            return Admission.ADMIT
        excess = math.ceil(records - available)
        self.over_budget_records += records
        if forwarder != origin:
            return Admission.OVER_BUDGET
        start, count = self._excess.pop(forwarder, (now, 0))
        if now - start > EXCESS_WINDOW_S:
            start, count = now, 0
        count += excess
        self._excess[forwarder] = (start, count)
        while len(self._excess) > MAX_TRACKED_PEERS:
            self._excess.popitem(last=False)
        if count >= CUT_OFF_EXCESS_RECORDS:
            del self._excess[forwarder]
            return Admission.CUT_OFF
        return Admission.OVER_BUDGET


class InvalidGossipTally:
    """Counts invalid gossip messages per forwarding peer; a peer reaching ``limit`` is to
    be cut off. Bounded: a flood of fresh peer IDs, each sending a little, forgets the least
    recently counted peers rather than growing without end."""

    def __init__(self, limit: int, max_peers: int = MAX_TRACKED_PEERS) -> None:
        self._limit = limit
        self._max_peers = max_peers
        self._counts: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._counts)

    def count(self, peer: str) -> bool:
        """Count one invalid message from ``peer``; True once it reaches the limit (and then
        its count starts again, so a peer let back in after its ban gets a fresh tally)."""
        total = self._counts.pop(peer, 0) + 1
        if total >= self._limit:
            return True
        self._counts[peer] = total
        while len(self._counts) > self._max_peers:
            self._counts.popitem(last=False)
        return False
