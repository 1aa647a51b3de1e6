"""The libp2p side of the node: host, GossipSub, streams, connection events.

Built for safety first: Noise is the only security transport (py-libp2p's default also accepts
plaintext, secio and TLS) and yamux the only muxer. GossipSub runs with explicit parameters and
py-libp2p's spam limiter off: it drops a node's own publishes above 10/s, and our validators and
per-peer reject counts are the protection instead. Gossip message IDs are content hashes, as
records carry their own signatures.

libp2p is imported here and in node/network_nat.py (AutoNAT, the relay service and client)
and nowhere else, so everything above these modules can be tested without starting a host.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.discovery.events.peerDiscovery import peerDiscovery
from libp2p.host.autonat.autonat import AUTONAT_PROTOCOL_ID
from libp2p.host.autonat.pb.autonat_pb2 import Message as AutoNatMessage
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.rcmgr import ResourceLimits, ResourceManager
from libp2p.rcmgr.connection_limits import ConnectionLimits
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

from zion.node.config import Config
from zion.node.errors import NodeError
from zion.node.floodcontrol import InvalidGossipTally
from zion.node.network_nat import (
    CIRCUIT,
    HOP_PROTOCOL,
    DialBackAutoNat,
    RelayClient,
    relay_service,
)
from zion.node.reachability import DialBack
from zion.protocols import gossip

log = logging.getLogger(__name__)

#: py-libp2p's yamux by default sends a WINDOW_UPDATE frame after every read; with this it
#: batches them as go-yamux does (when half the window is used). Its documented PY_YAMUX_*
#: tuning knob, read at call time; measured here: ~13 % less CPU per received gossip message.
YAMUX_TUNING: Final = {"PY_YAMUX_RELEASE_ON_READ": "0"}

#: 1.1 is proposed first: py-libp2p's 1.2 sends one IDONTWANT RPC per message per mesh peer,
#: which costs more CPU than the duplicates it saves (bench/RESULTS.md: -20 to -37 % CPU per
#: record without it). 1.2 stays on offer for peers that propose it.
GOSSIPSUB_PROTOCOLS: Final = (
    TProtocol("/meshsub/1.1.0"),
    TProtocol("/meshsub/1.2.0"),
    TProtocol("/meshsub/1.0.0"),
)
#: Seen-message cache: go-libp2p-pubsub's default.
SEEN_TTL_S: Final = 120
#: A gossip message not validated and stored in this time counts as invalid (py-libp2p's
#: default is 5 s); generous, because the single writer may be busy with a sync batch.
VALIDATION_TIMEOUT_S: Final = 15.0
#: A peer whose gossip we reject this often is cut off.
MAX_REJECTS_PER_PEER: Final = 20
DIAL_TIMEOUT_S: Final = 15.0
#: How long a peer that sent too much invalid gossip stays cut off, and how many such peers
#: are remembered.
BAN_S: Final = 3600.0
MAX_BANNED_PEERS: Final = 4096
#: A DHT lookup in all, one query to one DHT peer, and how many of the peers closest to a key
#: are asked for its providers (Kademlia's k).
DHT_LOOKUP_TIMEOUT_S: Final = 30.0
DHT_QUERY_TIMEOUT_S: Final = 10.0
DHT_PEERS_ASKED: Final = 20
#: The whole AutoNAT question to a server.
AUTONAT_QUERY_TIMEOUT_S: Final = 30.0
#: The resource manager's own connection count (see _resource_manager): out of reach.
RCMGR_CONNECTION_COUNT_LIMIT: Final = 1_000_000_000

#: A gossip handler gets the topic, the forwarding peer, the origin (the peer that signed the
#: message) and the data.
GossipHandler = Callable[[str, str, str, bytes], Awaitable["GossipOutcome"]]


@dataclass(frozen=True, slots=True)
class GossipOutcome:
    forward: bool
    #: The sender is to blame (invalid records), not merely unlucky (duplicates).
    blame: bool = False
    #: The sender floods: cut it off now.
    cut_off: bool = False
    #: Dropped for who sent it, not for what it is: take a copy from another peer.
    unseen: bool = False


def gossip_message_id(msg: rpc_pb2.Message) -> bytes:
    return gossip.message_id(msg.data)


class _ConnectionEvents(INotifee):  # type: ignore[misc]
    """Forwards new connections to a channel and disconnections to callbacks; never blocks
    the swarm."""

    def __init__(
        self,
        send: trio.MemorySendChannel[str],
        on_disconnect: list[Callable[[str], None]],
        refuse: Callable[[INetConn], bool],
    ) -> None:
        """``refuse``: whether to close a new connection at once (a banned peer's)."""
        self._send = send
        self._on_disconnect = on_disconnect
        self._refuse = refuse

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        if self._refuse(conn):
            return
        peer = conn.muxed_conn.peer_id
        # If the channel is full, periodic sync catches up with whoever we missed.
        with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
            self._send.send_nowait(peer.to_base58())

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        peer = conn.muxed_conn.peer_id
        if network.connections.get(peer):  # another connection to the same peer remains
            return
        for callback in self._on_disconnect:
            callback(peer.to_base58())

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass


class _SeenOnArrivalPubsub(Pubsub):  # type: ignore[misc]  # libp2p ships no type hints
    """Pubsub that marks a message seen when it first arrives, not after it is validated.

    py-libp2p 0.8 checks the seen cache on arrival but only adds to it once validators
    return, so every copy that mesh peers forward meanwhile is validated and stored again: in
    the 10-node benchmark 11-102 of 351 messages per node were (a third of a receiver's CPU
    per record). ``_is_msg_seen`` is called once, synchronously, before validation in
    ``push_msg``; making it test-and-set closes that window. A message that fails validation
    stays seen, so its later copies are dropped without another validation.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Messages being validated that are to be forgotten when it ends (at most as many
        #: as validations in flight: each is removed when its validation ends).
        self._forgotten: set[bytes] = set()

    def _is_msg_seen(self, msg: rpc_pb2.Message) -> bool:
        msg_id = self._msg_id_constructor(msg)
        if self.seen_messages.has(msg_id):
            return True
        self.seen_messages.add(msg_id)
        return False

    def forget(self, msg: rpc_pb2.Message) -> None:
        """Treat ``msg`` as never seen once its validation ends, so that a copy from another
        peer is validated afresh (py-libp2p also caches a failed validation by message ID)."""
        self._forgotten.add(self._msg_id_constructor(msg))

    async def validate_msg(self, msg_forwarder: ID, msg: rpc_pb2.Message) -> None:
        try:
            await super().validate_msg(msg_forwarder, msg)
        finally:
            msg_id = self._msg_id_constructor(msg)
            if msg_id in self._forgotten:
                self._forgotten.discard(msg_id)
                self.validation_cache._remove(msg_id)
                with self.seen_messages.lock:
                    self.seen_messages.cache.pop(msg_id, None)


def _connection_config(config: Config) -> ConnectionConfig:
    """The connection manager's bounds: never more than max_connections; pruned back to half
    of it when over (connections younger than its grace period are spared); dials known peers
    while under three quarters."""
    limit = config.network.max_connections
    return ConnectionConfig(
        max_connections=limit,
        min_connections=0,
        low_watermark=max(1, limit // 2),
        high_watermark=limit,
        max_connections_per_peer=config.network.max_connections_per_peer,
    )


def _resource_manager(config: Config) -> ResourceManager:
    network = config.network
    return ResourceManager(
        # Its own connection count only grows with refused connections (0.8.1): keep it out
        # of the way; ConnectionLimits count established connections correctly.
        limits=ResourceLimits(max_connections=RCMGR_CONNECTION_COUNT_LIMIT),
        connection_limits=ConnectionLimits(
            max_established_inbound=network.max_inbound,
            max_established_outbound=network.max_connections,
            max_established_per_peer=network.max_connections_per_peer,
            max_established_total=network.max_connections,
        ),
    )


class Network:
    def __init__(self, seed: bytes, config: Config) -> None:
        for name, value in YAMUX_TUNING.items():
            os.environ.setdefault(name, value)
        self._config = config
        key_pair = create_new_key_pair(seed)
        noise = NoiseTransport(key_pair, noise_privkey=create_new_x25519_key_pair().private_key)
        try:
            self._listen = [multiaddr.Multiaddr(addr) for addr in config.network.listen]
            self._announce = [multiaddr.Multiaddr(addr) for addr in config.network.announce]
        except Exception as exc:  # multiaddr raises several types for bad text
            raise NodeError(f"network.listen or network.announce: {exc}") from None
        self.host = new_host(
            key_pair=key_pair,
            sec_opt={NOISE_PROTOCOL_ID: noise},
            muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
            listen_addrs=self._listen,
            announce_addrs=self._announce or None,
            enable_mDNS=config.network.mdns,
            connection_config=_connection_config(config),
            resource_manager=_resource_manager(config),
        )
        # py-libp2p 0.8.1 takes an inbound slot per accepted connection and gives it back only
        # when the whole swarm stops, so a node stops accepting anyone after its first
        # (max_connections - min_connections) inbound connections ever. The resource manager
        # above caps inbound connections as they come and go; this cap is lifted.
        self.host.get_network()._inbound_limiter = trio.CapacityLimiter(math.inf)
        gossip_config = config.gossip
        self.router = GossipSub(
            protocols=list(GOSSIPSUB_PROTOCOLS),
            degree=gossip_config.degree,
            degree_low=gossip_config.degree_low,
            degree_high=gossip_config.degree_high,
            heartbeat_interval=gossip_config.heartbeat_interval_s,
            heartbeat_initial_delay=0.1,
            time_to_live=60,
            spam_protection_enabled=False,
        )
        self.pubsub = _SeenOnArrivalPubsub(
            self.host,
            self.router,
            seen_ttl=SEEN_TTL_S,
            validation_timeout=VALIDATION_TIMEOUT_S,
            strict_signing=True,
            msg_id_constructor=gossip_message_id,
        )
        # Kademlia as a client: members find peers and providers; seed nodes serve (issue 8).
        mode = DHTMode.SERVER if config.network.dht_mode == "server" else DHTMode.CLIENT
        self.dht = KadDHT(self.host, mode) if config.network.dht else None
        self.relay = relay_service(self.host, config.relay) if config.relay.service else None
        self.autonat = DialBackAutoNat(self.host, serve=config.network.autonat_service)
        # py-libp2p punches from the first advertised address: an announced one is not local.
        punch = config.network.hole_punching and not config.network.announce
        if config.network.hole_punching and config.network.announce:
            log.warning("hole punching is off: it does not work with [network] announce set")
        self.relay_client = RelayClient(self.host, punch)
        self._rejects = InvalidGossipTally(MAX_REJECTS_PER_PEER)
        #: Gossip payload bytes that peers handed us (validated or not).
        self.gossip_bytes_received = 0
        self._connections_send, self.connections = trio.open_memory_channel[str](256)
        #: Called with a peer ID when the last connection to that peer closes.
        self.on_disconnect: list[Callable[[str], None]] = []
        #: Called (in trio's thread) with a peer ID and its addresses when mDNS sees a peer.
        self.on_lan_peer: Callable[[str, list[str]], None] | None = None
        #: Peers cut off for misbehaving, until when (trio time); bounded, oldest dropped.
        self._banned: OrderedDict[str, float] = OrderedDict()
        self._nursery: trio.Nursery | None = None
        self.host.get_network().register_notifee(
            _ConnectionEvents(self._connections_send, self.on_disconnect, self._refuse)
        )

    @property
    def peer_id(self) -> str:
        return str(self.host.get_id().to_base58())

    @asynccontextmanager
    async def running(self, handler: GossipHandler) -> AsyncIterator[None]:
        """Listen, start pubsub, subscribe to every topic; stop all of it on exit."""
        async with contextlib.AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(self.host.run(listen_addrs=self._listen))
            except OSError as exc:
                listen = ", ".join(self._config.network.listen)
                raise NodeError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
            if self._listen and not self.host.get_addrs():
                # py-libp2p logs a failed listen and carries on; a node nobody can reach is
                # not what the operator asked for.
                listen = ", ".join(self._config.network.listen)
                raise NodeError(f"cannot listen on {listen} (address in use or not local?)")
            await stack.enter_async_context(background_trio_service(self.pubsub))
            await stack.enter_async_context(background_trio_service(self.router))
            nursery = await stack.enter_async_context(trio.open_nursery())
            self._nursery = nursery
            if self.dht is not None:
                await nursery.start(_run_service, self.dht)
            if self.relay is not None:
                await nursery.start(_run_service, self.relay)
            await nursery.start(self.relay_client.run)
            if self._config.network.mdns:
                stack.enter_context(self._lan_sightings())
            await self.pubsub.wait_until_ready()
            for topic in gossip.TOPICS:
                self.pubsub.set_topic_validator(
                    topic, self._validator(topic, handler), is_async_validator=True
                )
                subscription = await self.pubsub.subscribe(topic)
                nursery.start_soon(_drain, subscription)
            yield
            nursery.cancel_scope.cancel()

    @contextlib.contextmanager
    def _lan_sightings(self) -> Iterator[None]:
        """Pass mDNS sightings to ``on_lan_peer``. py-libp2p reports them on zeroconf's
        thread, through a process-wide registry: hand them over to trio's thread."""
        token = trio.lowlevel.current_trio_token()
        own_id = self.host.get_id()

        def seen(info: PeerInfo) -> None:
            if info.peer_id == own_id or self.on_lan_peer is None:
                return
            addrs = [str(addr) for addr in info.addrs]
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(self.on_lan_peer, info.peer_id.to_base58(), addrs)

        peerDiscovery.register_peer_discovered_handler(seen)
        try:
            yield
        finally:
            peerDiscovery.unregister_peer_discovered_handler(seen)

    def _validator(
        self, topic: str, handler: GossipHandler
    ) -> Callable[[ID, rpc_pb2.Message], Awaitable[bool]]:
        own_id = self.host.get_id()

        async def validate(forwarder: ID, msg: rpc_pb2.Message) -> bool:
            if forwarder == own_id:
                return True  # our own publish: its records are already stored
            self.gossip_bytes_received += len(msg.data)
            sender = forwarder.to_base58()
            origin = ID(msg.from_id).to_base58()  # strict signing: checked before we are called
            outcome = await handler(topic, sender, origin, msg.data)
            if outcome.cut_off:
                log.warning("cutting off %s: it floods the network with records", sender)
                self.ban(forwarder)
            elif outcome.blame:
                self._blame(forwarder, sender)
            if outcome.unseen:
                self.pubsub.forget(msg)
            return outcome.forward

        return validate

    def _blame(self, peer: ID, sender: str) -> None:
        if self._rejects.count(sender):
            log.warning("cutting off %s: %d invalid gossip messages", sender, MAX_REJECTS_PER_PEER)
            self.ban(peer)

    def ban(self, peer: ID) -> None:
        """Cut a peer off for BAN_S: drop its gossip, forget its addresses (so nothing dials it
        again), close its connections, and close new ones while the ban lasts. py-libp2p has
        no ban by peer ID (its gater bans addresses), hence this."""
        sender = peer.to_base58()
        self._banned.pop(sender, None)
        self._banned[sender] = trio.current_time() + BAN_S
        while len(self._banned) > MAX_BANNED_PEERS:
            self._banned.popitem(last=False)
        self.pubsub.add_to_blacklist(peer)
        self.host.get_peerstore().clear_addrs(peer)
        if self._nursery is not None:
            self._nursery.start_soon(self._disconnect, peer)

    def banned(self) -> list[str]:
        now = trio.current_time()
        return [peer for peer, until in self._banned.items() if until > now]

    def _refuse(self, conn: INetConn) -> bool:
        peer = conn.muxed_conn.peer_id
        until = self._banned.get(peer.to_base58())
        if until is None or until <= trio.current_time():
            return False
        # Closing inside the swarm's own connection handling would break it: soon, not now.
        if self._nursery is not None:
            self._nursery.start_soon(conn.close)
        return True

    async def _disconnect(self, peer: ID) -> None:
        try:
            with trio.fail_after(DIAL_TIMEOUT_S):
                await self.host.disconnect(peer)
        except Exception as exc:  # py-libp2p raises many types for a peer already gone
            log.debug("disconnecting %s: %r", peer, exc)

    async def publish(self, topic: str, data: bytes) -> None:
        await self.pubsub.publish(topic, data)

    def addrs(self) -> list[str]:
        return [str(addr) for addr in self.host.get_addrs()]

    def connection_counts(self) -> dict[str, int]:
        """Established connections now: total, inbound, outbound, and distinct peers."""
        metrics = self.host.get_network().get_metrics()
        return {key: int(metrics.get(key, 0)) for key in ("total", "inbound", "outbound", "peers")}

    def connected_peers(self) -> list[str]:
        return [peer.to_base58() for peer in self.host.get_connected_peers()]

    def connection_addrs(self, peer_id: str) -> list[str]:
        """The remote address of each open connection to ``peer_id``: a relayed one holds
        /p2p-circuit."""
        connections = self.host.get_network().connections.get(ID.from_base58(peer_id)) or []
        found = []
        for connection in connections if isinstance(connections, list) else [connections]:
            try:
                found += [str(a) for a in connection.get_transport_addresses()]
            except Exception:  # noqa: S112 (a connection closing meanwhile has none)
                continue
        return found

    def peer_addrs(self, peer_id: str) -> list[str]:
        try:
            return [str(a) for a in self.host.get_peerstore().addrs(ID.from_base58(peer_id))]
        except Exception:  # the peerstore raises when it knows no address
            return []

    def may_speak(self, peer_id: str, protocol: str) -> bool:
        """False once identify has told us ``peer_id`` does not speak ``protocol``."""
        try:
            protocols = self.host.get_peerstore().get_protocols(ID.from_base58(peer_id))
        except Exception:
            return True
        return not protocols or protocol in protocols

    async def connect(self, address: str) -> str:
        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(address))
        except Exception as exc:  # multiaddr and py-libp2p raise many types for bad text
            raise ValueError(f"{address!r} is not a multiaddr with /p2p/<peer ID>: {exc}") from None
        if info.peer_id == self.host.get_id():
            raise ValueError("that is this node's own address")
        if info.peer_id.to_base58() in self.banned():
            raise ValueError("that peer is cut off for misbehaving (zion status: banned_peers)")
        if CIRCUIT in address:
            await self.relay_client.dial(address)
        else:
            await self._dial(info)
        return str(info.peer_id.to_base58())

    async def _dial(self, info: PeerInfo) -> None:
        """py-libp2p refuses for a minute to dial a peer whose addresses all failed once (its
        swarm's negative cache); here the callers decide when to try again: the peer finder's
        backoff (5 s first: a seed started a moment after its members), or a member's own
        `zion connect`."""
        self.host.get_network().unblock_peer(info.peer_id)
        with trio.fail_after(DIAL_TIMEOUT_S):
            await self.host.connect(info)

    def set_stream_handler(
        self, protocol: str, handler: Callable[[INetStream], Awaitable[None]]
    ) -> None:
        self.host.set_stream_handler(TProtocol(protocol), handler)

    async def open_stream(self, peer_id: str, protocol: str | Sequence[str]) -> Any:
        protocols = [protocol] if isinstance(protocol, str) else list(protocol)
        return await self.host.new_stream(
            ID.from_base58(peer_id), [TProtocol(p) for p in protocols]
        )

    def has_dht(self) -> bool:
        return self.dht is not None

    def autonat_servers(self) -> list[str]:
        """Connected peers that identify says answer AutoNAT dial-back requests."""
        return [
            peer
            for peer in self.connected_peers()
            if AUTONAT_PROTOCOL_ID in self._protocols_of(peer)
        ]

    def _protocols_of(self, peer_id: str) -> list[str]:
        try:
            return list(self.host.get_peerstore().get_protocols(ID.from_base58(peer_id)))
        except Exception:  # the peerstore raises for a peer identify has not described
            return []

    async def ask_dial_back(self, peer_id: str) -> DialBack:
        """Ask an AutoNAT server to dial this node back at the addresses it advertises."""
        direct = [a.to_bytes() for a in self.host.get_addrs() if CIRCUIT not in str(a)]
        if not direct:
            return DialBack.FAILED  # nothing to dial: only relays can reach us
        try:
            status, _ = await self.autonat.query_server(
                ID.from_base58(peer_id), addrs=direct, timeout=AUTONAT_QUERY_TIMEOUT_S
            )
        except Exception as exc:  # the server went away, or does not answer
            log.debug("AutoNAT query to %s failed: %s", peer_id, exc)
            return DialBack.UNANSWERED
        finally:
            # py-libp2p keeps every server's verdict for its own tally, which we do not use.
            self.autonat.dial_results.pop(ID.from_base58(peer_id), None)
        if status == AutoNatMessage.OK:
            return DialBack.REACHED
        if status == AutoNatMessage.E_DIAL_ERROR:
            return DialBack.FAILED
        return DialBack.UNANSWERED

    async def find_providers(self, multihash: bytes, count: int) -> dict[str, list[str]]:
        """Up to ``count`` peers the DHT names as providers of ``multihash`` (not this node),
        with their addresses."""
        if self.dht is None:
            return {}
        store = self.dht.provider_store
        found: list[PeerInfo] = list(store.get_providers(multihash))
        if len(found) < count:
            # py-libp2p answers from its own store whenever it holds any record for the key
            # (a node that provides the key holds its own), so it would not ask the network:
            # ask the peers closest to the key ourselves, as its lookup would next.
            with trio.move_on_after(DHT_LOOKUP_TIMEOUT_S):
                closest = await self.dht.peer_routing.find_closest_peers_network(multihash)
                async with trio.open_nursery() as nursery:
                    for peer in closest[:DHT_PEERS_ASKED]:
                        nursery.start_soon(self._ask_providers, store, peer, multihash, found)
        own_id = self.host.get_id()
        merged: dict[str, set[str]] = {}
        for info in found:
            if info.peer_id != own_id:
                merged.setdefault(info.peer_id.to_base58(), set()).update(map(str, info.addrs))
        return {peer: sorted(addrs) for peer, addrs in list(merged.items())[:count]}

    @staticmethod
    async def _ask_providers(store: Any, peer: ID, key: bytes, found: list[PeerInfo]) -> None:
        # A private method of py-libp2p 0.8.1's provider store (tests/unit/node/test_network.py
        # pins it): one GET_PROVIDERS query, which logs and swallows its own errors.
        with trio.move_on_after(DHT_QUERY_TIMEOUT_S):
            providers, _ = await store._get_providers_from_peer_with_closers(peer, key)
            found.extend(providers)

    async def connect_providers(self, multihash: bytes, count: int) -> list[str]:
        """Peers the DHT names as providers of ``multihash``, connected (best effort)."""
        connected: list[str] = []
        for peer_id, addrs in (await self.find_providers(multihash, count)).items():
            if await self.connect_peer(peer_id, addrs):
                connected.append(peer_id)
        return connected

    async def connect_peer(self, peer_id: str, addrs: list[str]) -> bool:
        """Dial a peer at any of ``addrs``, directly first, then through a relay named in
        them (best effort): whether it is connected."""
        if peer_id in self.banned():
            return False
        direct = [a for a in addrs if CIRCUIT not in a]
        relayed = [a for a in addrs if CIRCUIT in a]
        try:
            if direct:
                info = PeerInfo(ID.from_base58(peer_id), [multiaddr.Multiaddr(a) for a in direct])
                await self._dial(info)
                return True
        except Exception as exc:  # py-libp2p raises many types for unreachable peers
            log.debug("cannot reach %s directly: %s", peer_id, exc)
        for address in relayed:
            try:
                await self.relay_client.dial(
                    address if "/p2p/" + peer_id in address else f"{address}/p2p/{peer_id}"
                )
                return True
            except Exception as exc:  # a relay that is gone or holds no slot for the peer
                log.debug("cannot reach %s through %s: %s", peer_id, address, exc)
        return False

    def relays(self) -> dict[str, list[str]]:
        """Connected peers that offer circuit relay, with their direct addresses."""
        return {
            peer: [a for a in self.peer_addrs(peer) if CIRCUIT not in a and "/p2p/" not in a]
            + [
                a.split("/p2p/")[0]
                for a in self.peer_addrs(peer)
                if CIRCUIT not in a and "/p2p/" in a
            ]
            for peer in self.connected_peers()
            if HOP_PROTOCOL in self._protocols_of(peer)
        }

    async def keep_reachable(self, private: bool) -> bool:
        """While this node cannot be dialed, hold slots at relays and advertise the relayed
        addresses; tell connected peers (identify push) when they change, and say so."""
        if private:
            changed = await self.relay_client.keep_reserved(self.relays())
        else:
            changed = self.relay_client.release_all()
        if changed:
            with contextlib.suppress(Exception):  # best effort, as py-libp2p's own push
                await self.host._push_identify_to_all_peers()
        return changed

    async def provide(self, multihash: bytes) -> bool:
        """Announce in the DHT that this node has ``multihash`` (best effort): whether some
        DHT server took the record."""
        if self.dht is None:
            return False
        return bool(await self.dht.provide(multihash.hex()))


async def _run_service(
    service: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run a py-libp2p service as a task of our nursery, stopped by its cancellation."""
    async with background_trio_service(service):
        task_status.started()
        await trio.sleep_forever()


async def _drain(subscription: Any) -> None:
    """Our validator already handled every message; keep the queue from filling."""
    while True:
        await subscription.get()
