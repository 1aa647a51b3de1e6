"""Keeping a node connected to the Zion network.

Peers come from three places: the bootstrap list (config and configs/bootstrap.toml), the DHT
rendezvous (protocols/discovery.py: every node provides one key, and finds others as its
providers), and mDNS on the LAN. py-libp2p's own auto-connector skips private and loopback
addresses when the node has a public one, and waits 60 s before redialing a lost peer: this
module does the dialing.

While fewer than ``min_peers`` peers are connected, every DISCOVERY_INTERVAL_S the node
redials bootstrap peers it lost (each address with its own backoff, so a seed that is down is
not hammered), then asks the DHT. A link that comes back after a partition is found this way.
"""

from __future__ import annotations

import logging
import math
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol

import trio

from zion.protocols.discovery import RENDEZVOUS_KEY

log = logging.getLogger(__name__)

#: How often a node short of peers looks for more; with enough peers it still checks this
#: often (a cheap count) so that a loss is noticed.
DISCOVERY_INTERVAL_S: Final = 10.0
#: A bootstrap address that failed is retried after this, doubling up to the maximum; up to
#: a lower maximum for a peer connected within the last RECENTLY_CONNECTED_S, so that a
#: link that comes back after a long cut is found again within seconds.
BOOTSTRAP_BACKOFF_MIN_S: Final = 5.0
BOOTSTRAP_BACKOFF_MAX_S: Final = 300.0
BOOTSTRAP_BACKOFF_RECENT_MAX_S: Final = 20.0
RECENTLY_CONNECTED_S: Final = 3600.0
#: The DHT is asked at most this often (a lookup costs several round trips); after lookups
#: that find no one new, less and less often, down to the maximum.
DHT_LOOKUP_MIN_INTERVAL_S: Final = 10.0
DHT_LOOKUP_MAX_INTERVAL_S: Final = 300.0
#: Providers asked for per lookup.
MAX_PROVIDERS_PER_LOOKUP: Final = 20
#: The DHT steps of a round together (a walk, then dials), at most.
DHT_ROUND_TIMEOUT_S: Final = 60.0
#: Provider records live 48 h in py-libp2p and js-libp2p; renewing hourly also refills a
#: DHT server that restarted (they keep provider records in memory).
ADVERTISE_INTERVAL_S: Final = 3600.0
#: Dials started in one round, and peers found on the LAN waiting to be dialed.
MAX_DIALS_PER_ROUND: Final = 8
MAX_PENDING_LAN_PEERS: Final = 64


class PeerNetwork(Protocol):
    """What discovery needs from the libp2p host (node/network.py)."""

    def connected_peers(self) -> list[str]: ...
    async def connect(self, address: str) -> str: ...
    async def find_providers(self, multihash: bytes, count: int) -> dict[str, list[str]]: ...
    async def connect_peer(self, peer_id: str, addrs: list[str]) -> bool: ...
    async def provide(self, multihash: bytes) -> bool: ...
    def has_dht(self) -> bool: ...


@dataclass(slots=True)
class _Backoff:
    delay: float = 0.0
    next_try: float = -math.inf
    last_connected: float = -math.inf

    def failed(self, now: float) -> None:
        recent = now - self.last_connected < RECENTLY_CONNECTED_S
        limit = BOOTSTRAP_BACKOFF_RECENT_MAX_S if recent else BOOTSTRAP_BACKOFF_MAX_S
        self.delay = min(max(self.delay * 2, BOOTSTRAP_BACKOFF_MIN_S), limit)
        self.next_try = now + self.delay

    def dialed(self, now: float) -> None:
        """Connected, but not yet seen to stay: a peer that bans us hangs up at once, and
        must not be redialed every round for it."""
        self.last_connected = now
        self.next_try = now + max(self.delay, BOOTSTRAP_BACKOFF_MIN_S)

    def stayed(self, now: float) -> None:
        self.delay, self.next_try, self.last_connected = 0.0, -math.inf, now


def peer_id_in(address: str) -> str:
    """The peer ID at the end of a /p2p/ multiaddr (config checked that it has one)."""
    return address.rsplit("/p2p/", 1)[-1].split("/", 1)[0]


class PeerFinder:
    def __init__(
        self,
        network: PeerNetwork,
        bootstrap: list[str],
        min_peers: int,
        max_bootstrap_dials: int,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self._network = network
        self._bootstrap = {address: _Backoff() for address in bootstrap}
        self._min_peers = min_peers
        self._max_bootstrap_dials = max_bootstrap_dials
        self._clock = clock
        self._next_lookup = -math.inf
        self._lookup_delay = DHT_LOOKUP_MIN_INTERVAL_S
        self._next_advertise = -math.inf
        self._advertise_delay = DISCOVERY_INTERVAL_S
        #: LAN peers seen by mDNS, dialed in the next round: peer ID -> multiaddrs.
        self._lan: OrderedDict[str, list[str]] = OrderedDict()
        #: Zion peers dialed because the DHT named them, and those it named in the last
        #: lookup (connected or not: py-libp2p's DHT also connects peers it learns of).
        self.found_by_dht = 0
        self.last_lookup_providers: list[str] = []
        self.found_on_lan = 0

    def lan_peer_seen(self, peer_id: str, addrs: list[str]) -> None:
        """An mDNS sighting (called in the node's trio thread)."""
        self._lan.pop(peer_id, None)
        self._lan[peer_id] = addrs
        while len(self._lan) > MAX_PENDING_LAN_PEERS:
            self._lan.popitem(last=False)

    async def run(self) -> None:
        """Two loops, so that a slow DHT walk never holds up redialing a lost seed."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._every_interval, self.dial_round)
            nursery.start_soon(self._every_interval, self.dht_round)

    @staticmethod
    async def _every_interval(step: Callable[[], Awaitable[None]]) -> None:
        while True:
            await step()
            await trio.sleep(DISCOVERY_INTERVAL_S)

    async def round(self) -> None:
        """One look around: both loops' steps, one after the other."""
        await self.dial_round()
        await self.dht_round()

    async def dial_round(self) -> None:
        """Below min_peers: redial lost bootstrap peers, and dial LAN peers mDNS saw."""
        connected = set(self._network.connected_peers())
        if len(connected) >= max(self._min_peers, 1):  # min_peers = 0 still wants one peer
            return
        async with trio.open_nursery() as nursery:
            for address in self._due_bootstrap(connected)[: self._max_bootstrap_dials]:
                nursery.start_soon(self._dial_bootstrap, address)
            for peer_id, addrs in self._take_lan_peers(connected):
                nursery.start_soon(self._dial_lan, peer_id, addrs)

    async def dht_round(self) -> None:
        """Advertise this node when due; below min_peers, look up others when due."""
        connected = self._network.connected_peers()
        if not self._network.has_dht() or not connected:
            return
        with trio.move_on_after(DHT_ROUND_TIMEOUT_S):
            if self._clock() >= self._next_advertise:
                await self._advertise()
            need = self._min_peers - len(connected)
            if need > 0 and self._clock() >= self._next_lookup:
                found = await self._look_up(min(need, MAX_DIALS_PER_ROUND))
                if found:
                    self._lookup_delay = DHT_LOOKUP_MIN_INTERVAL_S
                else:
                    self._lookup_delay = min(self._lookup_delay * 2, DHT_LOOKUP_MAX_INTERVAL_S)
                self._next_lookup = self._clock() + self._lookup_delay

    def _due_bootstrap(self, connected: set[str]) -> list[str]:
        """Bootstrap addresses to dial now, shuffled: members spread over the seeds."""
        now = self._clock()
        due = []
        for address, backoff in self._bootstrap.items():
            if peer_id_in(address) in connected:
                backoff.stayed(now)
            elif backoff.next_try <= now:
                due.append(address)
        random.shuffle(due)
        return due

    def _take_lan_peers(self, connected: set[str]) -> list[tuple[str, list[str]]]:
        peers = [(p, a) for p, a in self._lan.items() if p not in connected]
        self._lan.clear()
        return peers[:MAX_DIALS_PER_ROUND]

    async def _dial_bootstrap(self, address: str) -> None:
        backoff = self._bootstrap[address]
        try:
            peer = await self._network.connect(address)
        except Exception as exc:  # a bootstrap peer being down is normal
            backoff.failed(self._clock())
            log.warning(
                "cannot reach bootstrap peer %s (next try in %.0f s): %s",
                address,
                backoff.delay,
                exc,
            )
            return
        backoff.dialed(self._clock())
        log.info("connected to bootstrap peer %s", peer)

    async def _dial_lan(self, peer_id: str, addrs: list[str]) -> None:
        for address in addrs:
            try:
                await self._network.connect(f"{address}/p2p/{peer_id}")
            except Exception as exc:  # a LAN peer that left, or an address not for us
                log.debug("cannot reach LAN peer %s at %s: %s", peer_id, address, exc)
                continue
            self.found_on_lan += 1
            log.info("connected to LAN peer %s", peer_id)
            return

    def advertise_soon(self) -> None:
        """Our addresses changed: renew the provider record in the next round."""
        self._next_advertise = -math.inf
        self._advertise_delay = DISCOVERY_INTERVAL_S

    async def _advertise(self) -> None:
        """Provide the rendezvous key; after a failure, try again later and later."""
        try:
            if await self._network.provide(RENDEZVOUS_KEY):
                log.info("advertised this node in the DHT")
                self._advertise_delay = DISCOVERY_INTERVAL_S
                self._next_advertise = self._clock() + ADVERTISE_INTERVAL_S
                return
            reason = "no DHT server took the record"
        except Exception as exc:  # lookups fail in many ways while the DHT is small
            reason = str(exc)
        log.debug("cannot advertise in the DHT yet: %s", reason)
        self._next_advertise = self._clock() + self._advertise_delay
        self._advertise_delay = min(self._advertise_delay * 2, ADVERTISE_INTERVAL_S)

    async def _look_up(self, count: int) -> int:
        """Connect up to ``count`` new Zion peers found in the DHT; how many."""
        try:
            providers = await self._network.find_providers(RENDEZVOUS_KEY, MAX_PROVIDERS_PER_LOOKUP)
        except Exception as exc:  # lookups fail in many ways while the DHT is small
            log.debug("DHT lookup failed: %s", exc)
            return 0
        self.last_lookup_providers = sorted(providers)
        connected = set(self._network.connected_peers())
        new = [(peer, addrs) for peer, addrs in providers.items() if peer not in connected]
        dialed: list[bool] = []

        async def dial(peer_id: str, addrs: list[str]) -> None:
            dialed.append(await self._network.connect_peer(peer_id, addrs))

        async with trio.open_nursery() as nursery:
            for peer_id, addrs in new[:count]:
                nursery.start_soon(dial, peer_id, addrs)
        found = sum(dialed)
        self.found_by_dht += found
        if found:
            log.info("found %d Zion peers through the DHT", found)
        return found
