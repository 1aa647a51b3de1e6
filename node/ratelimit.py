"""Per-peer rate limits: a token bucket for each peer, in a bounded table.

Hand-written because it is a dozen lines and every library found is for HTTP frameworks or
asyncio; the table is bounded (least recently seen peers are forgotten first) so that a
flood of peer IDs costs bounded memory.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

#: Peers whose buckets are remembered; a forgotten peer starts again with a full bucket.
DEFAULT_MAX_PEERS: Final = 4096


@dataclass
class _Bucket:
    tokens: float
    updated: float


class PeerRateLimiter:
    def __init__(self, rate_per_s: float, burst: int, max_peers: int = DEFAULT_MAX_PEERS) -> None:
        if rate_per_s <= 0 or burst < 1 or max_peers < 1:
            raise ValueError("rate, burst and max_peers must be positive")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._max_peers = max_peers
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, peer: str, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens from ``peer``'s bucket (``now`` in seconds, monotonic); none
        are taken when there are not enough."""
        bucket = self._refilled(peer, now)
        if bucket.tokens < cost:
            return False
        bucket.tokens -= cost
        return True

    def available(self, peer: str, now: float) -> float:
        """Tokens in ``peer``'s bucket now."""
        return self._refilled(peer, now).tokens

    def _refilled(self, peer: str, now: float) -> _Bucket:
        bucket = self._buckets.pop(peer, None)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate_per_s)
            bucket.updated = now
        self._buckets[peer] = bucket
        if len(self._buckets) > self._max_peers:
            self._buckets.popitem(last=False)
        return bucket
