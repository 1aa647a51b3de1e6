"""The private parts of py-libp2p 0.8.1 that node/network.py and node/network_nat.py rely on:
a py-libp2p upgrade that changes them fails here, not silently in the background."""

from __future__ import annotations

import inspect

from libp2p.kad_dht.provider_store import ProviderStore
from libp2p.pubsub.pubsub import Pubsub, ValidationCache
from libp2p.relay.circuit_v2 import CircuitV2Protocol, DCUtRProtocol
from libp2p.relay.circuit_v2.resources import RelayLimits, RelayResourceManager
from libp2p.tools.timed_cache.last_seen_cache import LastSeenCache


def test_the_private_py_libp2p_parts_we_use_are_there() -> None:
    ask = ProviderStore._get_providers_from_peer_with_closers
    assert list(inspect.signature(ask).parameters) == ["self", "peer_id", "key"]
    assert callable(ValidationCache._remove)
    assert "cache" in inspect.getsource(LastSeenCache.add)
    assert callable(Pubsub._is_msg_seen)
    limits = RelayLimits(
        duration=1, data=1024, max_circuit_conns=1, max_reservations=1, reservation_ttl=60
    )
    assert RelayResourceManager(limits)._reservations == {}  # node/network_nat.BoundedRelay
    handle = inspect.signature(CircuitV2Protocol._handle_reserve)
    assert list(handle.parameters) == ["self", "stream", "msg"]
    status = inspect.signature(CircuitV2Protocol._send_status)
    assert list(status.parameters)[:4] == ["self", "stream", "code", "message"]
    # node/network_nat.GuardedHolePunching
    assert list(inspect.signature(DCUtRProtocol._handle_dcutr_stream).parameters) == [
        "self",
        "stream",
    ]
    assert "_decode_observed_addrs(" in inspect.getsource(DCUtRProtocol._handle_dcutr_stream)
    assert "_in_progress" in inspect.getsource(DCUtRProtocol._initiate_hole_punch_locked)
