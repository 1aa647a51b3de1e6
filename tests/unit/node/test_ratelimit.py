"""Per-peer token buckets."""

from __future__ import annotations

import pytest

from zion.node.ratelimit import PeerRateLimiter


def test_a_burst_then_the_rate() -> None:
    limiter = PeerRateLimiter(rate_per_s=2, burst=3)
    assert [limiter.allow("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b", 0.0)  # another peer has its own bucket
    assert not limiter.allow("a", 0.4)  # 0.8 of a token back
    assert limiter.allow("a", 0.5)
    assert [limiter.allow("a", 100.0) for _ in range(4)] == [True, True, True, False]


def test_the_table_of_peers_is_bounded() -> None:
    limiter = PeerRateLimiter(rate_per_s=1, burst=1, max_peers=2)
    assert limiter.allow("a", 0.0) and not limiter.allow("a", 0.0)
    limiter.allow("b", 0.0)
    limiter.allow("c", 0.0)  # "a" is forgotten: it starts again with a full bucket
    assert limiter.allow("a", 0.0)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        PeerRateLimiter(rate_per_s=0, burst=1)
