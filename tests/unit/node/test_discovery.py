"""PeerFinder's decisions against a scripted network: who it dials, when, and how often."""

from __future__ import annotations

import itertools

import pytest

from zion.node import discovery
from zion.node.config import load, network_seeds
from zion.node.discovery import PeerFinder, peer_id_in
from zion.protocols.discovery import RENDEZVOUS_CID, RENDEZVOUS_KEY

SEED = "/ip4/192.0.2.1/tcp/4001/p2p/12D3KooSeed"
OTHER_SEED = "/ip4/192.0.2.2/tcp/4001/p2p/12D3KooOther"


class ScriptedNetwork:
    def __init__(self) -> None:
        self.connected: set[str] = set()
        self.reachable: set[str] = set()
        self.providers: dict[str, list[str]] = {}
        self.dials: list[str] = []
        self.provided = 0
        self.lookups = 0
        self.dht = True

    def connected_peers(self) -> list[str]:
        return sorted(self.connected)

    def has_dht(self) -> bool:
        return self.dht

    async def connect(self, address: str) -> str:
        self.dials.append(address)
        peer = peer_id_in(address)
        if peer not in self.reachable:
            raise OSError("connection refused")
        self.connected.add(peer)
        return peer

    async def connect_peer(self, peer_id: str, addrs: list[str]) -> bool:
        self.dials.append(peer_id)
        if peer_id in self.reachable:
            self.connected.add(peer_id)
            return True
        return False

    async def find_providers(self, multihash: bytes, count: int) -> dict[str, list[str]]:
        assert multihash == RENDEZVOUS_KEY
        self.lookups += 1
        return dict(list(self.providers.items())[:count])

    async def provide(self, multihash: bytes) -> bool:
        assert multihash == RENDEZVOUS_KEY
        self.provided += 1
        return bool(self.connected)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def finder(network: ScriptedNetwork, clock: Clock, bootstrap: list[str]) -> PeerFinder:
    return PeerFinder(network, bootstrap, min_peers=3, max_bootstrap_dials=8, clock=clock)


async def test_a_lost_bootstrap_peer_is_redialed_with_backoff() -> None:
    network, clock = ScriptedNetwork(), Clock()
    peers = finder(network, clock, [SEED])
    await peers.round()
    await peers.round()  # too soon: the seed is backing off
    assert network.dials == [SEED]

    clock.now += discovery.BOOTSTRAP_BACKOFF_MIN_S
    network.reachable.add("12D3KooSeed")
    await peers.round()
    assert network.dials == [SEED, SEED] and network.connected == {"12D3KooSeed"}

    await peers.round()  # connected: not dialed again
    assert network.dials == [SEED, SEED]
    network.connected.clear()  # the link went down
    await peers.round()
    assert network.dials == [SEED, SEED, SEED]


async def test_backoff_doubles_up_to_its_limit() -> None:
    network, clock = ScriptedNetwork(), Clock()
    peers = finder(network, clock, [SEED])
    delays = []
    for _ in range(12):
        clock.now += 10_000
        await peers.round()
        delays.append(peers._bootstrap[SEED].delay)
    assert delays[:3] == [5.0, 10.0, 20.0]
    assert max(delays) == discovery.BOOTSTRAP_BACKOFF_MAX_S


async def test_the_dht_names_peers_to_dial_and_we_advertise_ourselves() -> None:
    network, clock = ScriptedNetwork(), Clock()
    network.reachable |= {"12D3KooSeed", "alice", "bob"}
    network.providers = {"12D3KooSeed": [], "alice": ["/ip4/192.0.2.3/tcp/1"], "bob": []}
    peers = finder(network, clock, [SEED])
    await peers.round()
    assert network.provided == 1
    assert network.connected == {"12D3KooSeed", "alice", "bob"}
    assert peers.found_by_dht == 2  # the seed was connected already
    assert peers.last_lookup_providers == ["12D3KooSeed", "alice", "bob"]

    # Enough peers: no lookup; the advertisement is renewed only after its interval.
    await peers.round()
    assert (network.lookups, network.provided) == (1, 1)
    clock.now += discovery.ADVERTISE_INTERVAL_S
    await peers.round()
    assert network.provided == 2


async def test_lookups_that_find_nobody_back_off() -> None:
    network, clock = ScriptedNetwork(), Clock()
    network.reachable.add("12D3KooSeed")
    peers = finder(network, clock, [SEED])
    times = []
    for _ in range(40):
        before = network.lookups
        await peers.round()
        if network.lookups > before:
            times.append(clock.now)
        clock.now += discovery.DISCOVERY_INTERVAL_S
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 2 * discovery.DHT_LOOKUP_MIN_INTERVAL_S
    assert gaps == sorted(gaps)


async def test_nothing_is_advertised_or_looked_up_without_a_dht() -> None:
    network, clock = ScriptedNetwork(), Clock()
    network.dht = False
    network.reachable.add("12D3KooSeed")
    peers = finder(network, clock, [SEED])
    await peers.round()
    assert (network.provided, network.lookups) == (0, 0)


async def test_lan_peers_are_dialed_bounded_and_once() -> None:
    network, clock = ScriptedNetwork(), Clock()
    network.reachable.add("lan-1")
    peers = finder(network, clock, [])
    for index in range(discovery.MAX_PENDING_LAN_PEERS + 10):
        peers.lan_peer_seen(f"lan-{index}", [f"/ip4/10.0.0.{index % 250}/tcp/4001"])
    assert len(peers._lan) == discovery.MAX_PENDING_LAN_PEERS
    await peers.round()
    assert len(network.dials) == discovery.MAX_DIALS_PER_ROUND
    await peers.round()
    assert len(network.dials) == discovery.MAX_DIALS_PER_ROUND  # sightings are used once


def test_the_rendezvous_key_is_go_libp2p_routing_discovery_of_the_topic() -> None:
    # go-libp2p: cid.NewCidV1(cid.Raw, multihash.Sum([]byte("floodsub:"+topic), SHA2_256))
    assert RENDEZVOUS_CID == "bafkreibrjtn4cpaijxhfzct6ycrkflarbz446l2cn4xaad6m5cbbe4vagu"
    assert RENDEZVOUS_KEY[:2] == b"\x12\x20"


def test_the_shipped_seed_list_is_valid_and_used_unless_switched_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    network_seeds()  # raises on a bad entry
    monkeypatch.setattr("zion.node.config.network_seeds", lambda: [OTHER_SEED])
    config = load(None, {"network": {"bootstrap": [SEED, OTHER_SEED]}})
    assert config.network.bootstrap_peers() == [SEED, OTHER_SEED]
    config = load(None, {"network": {"default_bootstrap": False}})
    assert config.network.bootstrap_peers() == []
    config = load(None)
    assert config.network.bootstrap_peers() == [OTHER_SEED]


async def test_a_peer_lost_recently_is_retried_often_however_long_the_cut() -> None:
    network, clock = ScriptedNetwork(), Clock()
    network.reachable.add("12D3KooSeed")
    peers = finder(network, clock, [SEED])
    await peers.round()
    assert network.connected == {"12D3KooSeed"}
    network.connected.clear()
    network.reachable.clear()  # a long partition
    for _ in range(50):
        clock.now += discovery.DISCOVERY_INTERVAL_S
        await peers.round()
    assert peers._bootstrap[SEED].delay == discovery.BOOTSTRAP_BACKOFF_RECENT_MAX_S
    clock.now += discovery.RECENTLY_CONNECTED_S
    for _ in range(10):
        clock.now += 10_000
        await peers.round()
    assert peers._bootstrap[SEED].delay == discovery.BOOTSTRAP_BACKOFF_MAX_S
