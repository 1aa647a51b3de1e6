"""NAT traversal on top of py-libp2p: AutoNAT that tells the truth, a relay service whose
circuits end on time, and the client side that keeps a node reachable through relays.

node/network.py owns the host; this module holds the libp2p pieces it plugs in (the two are
the only modules that import libp2p).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Any, Final

import multiaddr
import trio
from libp2p.abc import INetStream
from libp2p.host.autonat.autonat import AutoNATService
from libp2p.host.autonat.pb.autonat_pb2 import Message as AutoNatMessage
from libp2p.peer.id import ID
from libp2p.relay.circuit_v2 import PROTOCOL_ID as HOP_PROTOCOL_ID
from libp2p.relay.circuit_v2 import (
    CircuitV2Protocol,
    CircuitV2Transport,
    DCUtRProtocol,
    RelayLimits,
)
from libp2p.relay.circuit_v2.config import RelayConfig as LibRelayConfig
from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage
from libp2p.relay.circuit_v2.protocol_buffer import StatusCode
from libp2p.tools.anyio_service import background_trio_service

from zion.node.config import RelayConfig
from zion.node.ratelimit import PeerRateLimiter

log = logging.getLogger(__name__)

#: An AutoNAT dial-back.
AUTONAT_DIAL_TIMEOUT_S: Final = 10.0
#: An AutoNAT server dials back at most this many of the addresses it is given, answers one
#: requester (by IP) this often a minute, and everyone together this often.
MAX_DIAL_BACK_ADDRS: Final = 4
AUTONAT_PER_IP_PER_MIN: Final = 3
AUTONAT_TOTAL_PER_MIN: Final = 30
#: Relays a private node holds a slot at, and how long a reservation or a relayed dial may
#: take.
MAX_RELAYS: Final = 2
RELAY_TIMEOUT_S: Final = 20.0
HOP_PROTOCOL: Final = str(HOP_PROTOCOL_ID)
#: Hole punching: addresses of a peer dialed per session, and sessions a peer may start.
MAX_PUNCH_ADDRS: Final = 4
PUNCH_SESSIONS_PER_PEER: Final = 3
PUNCH_WINDOW_S: Final = 600.0
#: Per-IP limits count an IPv6 asker by this prefix (a home or a server gets a whole /64).
IPV6_PREFIX: Final = 64
CIRCUIT: Final = "/p2p-circuit"


class DialBackAutoNat(AutoNATService):  # type: ignore[misc]
    """py-libp2p's AutoNAT, dialing back on a new connection as the spec says.

    Its own server calls ``host.connect``, which reuses the connection the request came on,
    so it reports every peer reachable. This one dials the address itself (TCP, then the
    Noise handshake, which proves the peer ID) and hangs up, without touching the swarm.

    And it dials the requester's advertised ports at the IP the request came from, as
    go-libp2p's AutoNAT v1 service does: py-libp2p's refuses to answer when no advertised
    address has that IP, which is the case of every node behind NAT (it advertises its
    private address, the server sees its router's), so such a node never learnt that it is
    private, and never took a relay slot.
    """

    def __init__(self, host: Any, serve: bool) -> None:
        super().__init__(host, serve=serve)
        # go-libp2p's AutoNAT v1 service limits: 3 dial-backs a minute per requester (its
        # observed IP, which the dial-back must match), 30 for everyone together.
        self._per_ip = PeerRateLimiter(AUTONAT_PER_IP_PER_MIN / 60, AUTONAT_PER_IP_PER_MIN)
        self._total = PeerRateLimiter(AUTONAT_TOTAL_PER_MIN / 60, AUTONAT_TOTAL_PER_MIN, 1)

    async def _handle_dial(
        self, message: AutoNatMessage, observed_ip: str | None, is_relayed: bool
    ) -> AutoNatMessage:
        if is_relayed:  # refused below without dialing: spend no budget on it
            answer: AutoNatMessage = await super()._handle_dial(message, observed_ip, is_relayed)
            return answer
        now = trio.current_time()
        if observed_ip is not None and not (
            self._per_ip.allow(ip_key(observed_ip), now) and self._total.allow("", now)
        ):
            response = AutoNatMessage(type=AutoNatMessage.DIAL_RESPONSE)
            response.dialResponse.status = AutoNatMessage.E_DIAL_REFUSED
            response.dialResponse.statusText = "too many requests"
            return response
        if observed_ip is not None:
            at_observed = at_observed_ip(list(message.dial.peer.addrs), observed_ip)
            del message.dial.peer.addrs[:]
            message.dial.peer.addrs.extend(at_observed)
        answer = await super()._handle_dial(message, observed_ip, is_relayed)
        return answer

    async def _try_dial(self, peer_id: ID, addrs: list[bytes]) -> bytes | None:
        swarm = self.host.get_network()
        for raw in addrs[:MAX_DIAL_BACK_ADDRS]:
            try:
                address = multiaddr.Multiaddr(raw)
                transport = swarm.transport_manager.transport_for_dialing(address)
                if transport is None:
                    continue
                with trio.fail_after(AUTONAT_DIAL_TIMEOUT_S):
                    connection = await transport.dial(address)
                    try:
                        await swarm.upgrader.upgrade_security(connection, True, peer_id)
                    finally:
                        await connection.close()
            except Exception as exc:  # unreachable, refused, wrong peer: all mean "failed"
                log.debug("AutoNAT dial-back to %s failed: %s", peer_id, exc)
                continue
            return bytes(raw)
        return None


def at_observed_ip(addrs: list[bytes], observed_ip: str) -> list[bytes]:
    """The TCP ports of ``addrs`` at ``observed_ip``, without repeats: all a dial-back may
    try (only the requester's own IP: no one can aim the server at a third party)."""
    family = "ip6" if ":" in observed_ip else "ip4"
    found: list[bytes] = []
    for raw in addrs:
        words = _words(raw)
        if not _plain_tcp(words):
            continue
        candidate = multiaddr.Multiaddr(f"/{family}/{observed_ip}/tcp/{words[4]}").to_bytes()
        if candidate not in found:
            found.append(candidate)
    return found


def _plain_tcp(words: list[str]) -> bool:
    """['', 'ip4', '10.0.0.2', 'tcp', '4001'], maybe with /p2p/<id>: relayed addresses and
    other transports over TCP (ws, tls) are not."""
    if len(words) not in (5, 7) or words[1] not in ("ip4", "ip6") or words[3] != "tcp":
        return False
    return len(words) == 5 or words[5] == "p2p"


def _words(raw: bytes) -> list[str]:
    try:
        return str(multiaddr.Multiaddr(raw)).split("/")
    except Exception:  # py-multiaddr raises several types for bad bytes
        return []


def relay_service(host: Any, config: RelayConfig) -> CircuitV2Protocol:
    """Circuit relay v2 with hop on: members reserve slots and are reached through us."""
    limits = RelayLimits(
        duration=config.circuit_duration_s,
        data=config.circuit_bytes,
        max_circuit_conns=config.max_circuits_per_peer,
        max_reservations=config.max_reservations,
        reservation_ttl=config.reservation_ttl_s,
    )
    return BoundedRelay(host, limits, config.max_reservations_per_ip)


class BoundedRelay(CircuitV2Protocol):  # type: ignore[misc]
    """py-libp2p 0.8.1's relay with four holes closed:
    - it checks a circuit's duration only when data flows through it, so an idle circuit
      would hold its slot for ever: here the deadline ends it;
    - it reserves a slot for whatever peer ID the request names: here only for the peer
      asking (the spec's rule; py-libp2p's and js-libp2p's clients name themselves);
    - it does not enforce its per-IP reservation limit: here at most ``per_ip`` peers
      connected from one IP address hold a slot;
    - a slot counts against ``max_reservations`` until its time-to-live ends (an hour), also
      once its holder is gone: here slots of peers no longer connected are given back, as
      go-libp2p does when the peer disconnects."""

    def __init__(self, host: Any, limits: RelayLimits, per_ip: int) -> None:
        super().__init__(host, limits=limits, allow_hop=True)
        self._per_ip = per_ip
        #: Peers that reserved, and the IP address each reserved from.
        self._reserved_from: dict[ID, str] = {}

    async def _handle_reserve(self, stream: INetStream, msg: HopMessage) -> None:
        asking = stream.muxed_conn.peer_id
        if msg.HasField("peer") and msg.peer.id and msg.peer.id != asking.to_bytes():
            await self._send_status(
                stream, StatusCode.PERMISSION_DENIED, "a peer reserves a slot for itself only"
            )
            return
        ip = _remote_ip(stream)
        if ip is None:  # the connection is gone
            return
        holders = self._holders()
        others_from_ip = sum(
            1 for peer, held_from in holders.items() if held_from == ip and peer != asking
        )
        if others_from_ip >= self._per_ip:
            await self._send_status(
                stream, StatusCode.RESERVATION_REFUSED, "too many reservations from this IP"
            )
            return
        # Counted before py-libp2p awaits anything: requests from one IP that arrive together
        # would otherwise all pass the check above.
        self._reserved_from[asking] = ip
        try:
            await super()._handle_reserve(stream, msg)
        finally:
            if not self.resource_manager.has_reservation(asking):
                self._reserved_from.pop(asking, None)

    def _holders(self) -> dict[ID, str]:
        """Peers holding a live slot (connected, not expired); the other slots are given
        back, here and in py-libp2p's resource manager (a private dict: no public way)."""
        manager = self.resource_manager
        for peer in list(manager._reservations):
            if not manager.has_reservation(peer):
                del manager._reservations[peer]
        for peer in list(self._reserved_from):
            if peer not in manager._reservations:
                del self._reserved_from[peer]
        return self._reserved_from

    async def _relay_data(
        self,
        src_stream: INetStream,
        dst_stream: INetStream,
        peer_id: ID,
        deadline: float | None,
        circuit_data_limit: list[int] | None,
    ) -> None:
        if deadline is None:
            await super()._relay_data(src_stream, dst_stream, peer_id, deadline, circuit_data_limit)
            return
        with trio.move_on_after(max(0.0, deadline - time.monotonic())) as scope:
            await super()._relay_data(src_stream, dst_stream, peer_id, deadline, circuit_data_limit)
        if scope.cancelled_caught:
            for stream in (src_stream, dst_stream):
                with contextlib.suppress(Exception):  # already gone
                    await stream.reset()


def _remote_ip(stream: INetStream) -> str | None:
    """Who is asking, as the per-IP limits count it (see ip_key)."""
    try:
        remote = stream.get_remote_address()
    except Exception:  # py-libp2p raises several types for a connection already gone
        return None
    return ip_key(remote[0]) if remote else None


def ip_key(address: str) -> str:
    """An IPv4 address as itself (also when IPv4-mapped IPv6), an IPv6 one as its /64: one
    host commonly holds a whole /64, and would otherwise count as billions of askers."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_PREFIX}", strict=False))
    return str(parsed)


class GuardedHolePunching(DCUtRProtocol):  # type: ignore[misc]
    """py-libp2p's DCUtR, closed to misuse. Anyone who reaches a member through a relay can
    open DCUtR sessions with it, and py-libp2p 0.8.1 runs any number of them at once and dials
    every address a session names (up to ~400 in its 4 KiB message), three rounds each: a
    member's home connection made to scan or flood whatever addresses a stranger picks. Here
    a session is taken only over a relayed connection, one at a time per peer and at most
    PUNCH_SESSIONS_PER_PEER per PUNCH_WINDOW_S, and at most MAX_PUNCH_ADDRS plain TCP
    addresses of it are dialed."""

    def __init__(self, host: Any) -> None:
        super().__init__(host)
        self._sessions = PeerRateLimiter(
            PUNCH_SESSIONS_PER_PEER / PUNCH_WINDOW_S, PUNCH_SESSIONS_PER_PEER
        )
        self._answering: set[ID] = set()

    async def _handle_dcutr_stream(self, stream: INetStream) -> None:
        peer = stream.muxed_conn.peer_id
        if (
            peer in self._answering
            or not _over_relay(stream)
            or not self._sessions.allow(peer.to_base58(), trio.current_time())
        ):
            with contextlib.suppress(Exception):  # already gone
                await stream.reset()
            return
        self._answering.add(peer)
        try:
            await super()._handle_dcutr_stream(stream)
        finally:
            self._answering.discard(peer)

    def _decode_observed_addrs(self, addr_bytes: list[bytes]) -> list[multiaddr.Multiaddr]:
        """Used for the addresses a peer sends, both when it starts a session and when it
        answers ours."""
        found: list[multiaddr.Multiaddr] = []
        for raw in addr_bytes:
            if _plain_tcp(_words(raw)) and len(found) < MAX_PUNCH_ADDRS:
                found.append(multiaddr.Multiaddr(raw))
        return found


def _over_relay(stream: INetStream) -> bool:
    try:
        addrs = stream.muxed_conn.get_transport_addresses()
    except Exception:  # a connection already gone
        return False
    return any(CIRCUIT in str(address) for address in addrs or [])


class RelayClient:
    """The client side of circuit relay v2: answers relayed connections (the STOP protocol:
    every node does), dials through relays, and, while AutoNAT says this node cannot be
    dialed, holds slots at relays and advertises the relayed addresses."""

    def __init__(self, host: Any, hole_punching: bool) -> None:
        self._host = host
        self._protocol = CircuitV2Protocol(host, allow_hop=False)
        # DCUtR: both ends of a relayed connection dial each other at once, from their
        # listen ports (py-libp2p's TCP transport binds there with SO_REUSEPORT), so that
        # each NAT sees an outgoing connection and lets the other's in. It runs a loop
        # that tries every peer this node reaches through a relay only.
        self._hole_punching = GuardedHolePunching(host) if hole_punching else None
        self._transport = CircuitV2Transport(host, self._protocol, LibRelayConfig())
        #: relay peer ID -> this node's address through it (ending in /p2p-circuit).
        self.reserved: dict[str, str] = {}
        self._nursery: trio.Nursery | None = None
        # py-libp2p's get_addrs() cuts an address at its first /p2p/ and appends ours, which
        # turns "<relay addr>/p2p/<relay>/p2p-circuit" into the relay's own address: append
        # the relayed addresses after it, whole.
        plain_addrs: Callable[[], list[multiaddr.Multiaddr]] = host.get_addrs
        own = f"/p2p/{host.get_id().to_base58()}"

        def get_addrs() -> list[multiaddr.Multiaddr]:
            relayed = [multiaddr.Multiaddr(a + own) for a in self.reserved.values()]
            return [*plain_addrs(), *relayed]

        host.get_addrs = get_addrs

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(background_trio_service(self._protocol))
            if self._hole_punching is not None:
                await stack.enter_async_context(background_trio_service(self._hole_punching))
            self._nursery = await stack.enter_async_context(trio.open_nursery())
            # The reservations' refresher lives in that nursery.
            task_status.started()
            await trio.sleep_forever()

    async def dial(self, address: str) -> None:
        """Connect through a relay: ``address`` is <relay addr>/p2p-circuit/p2p/<peer>."""
        with trio.fail_after(RELAY_TIMEOUT_S):
            await self._transport.dial(multiaddr.Multiaddr(address))

    async def keep_reserved(self, relays: dict[str, list[str]]) -> bool:
        """Hold slots at up to MAX_RELAYS of ``relays`` (connected peers that offer the hop
        protocol, with their addresses); forget those no longer connected. Whether the set
        of relayed addresses changed."""
        before = dict(self.reserved)
        for relay in list(self.reserved):
            if relay not in relays:
                del self.reserved[relay]
        for relay, addrs in relays.items():
            if len(self.reserved) >= MAX_RELAYS:
                break
            if relay in self.reserved or not addrs or self._nursery is None:
                continue
            stream = None
            try:
                with trio.fail_after(RELAY_TIMEOUT_S):
                    relay_id = ID.from_base58(relay)
                    stream = await self._host.new_stream(relay_id, [HOP_PROTOCOL_ID])
                    reserved = await self._transport.reserve(stream, relay_id, self._nursery)
            except Exception as exc:  # a relay that went away or refuses
                log.debug("no slot at relay %s: %s", relay, exc)
                continue
            finally:
                # The slot belongs to the connection, not to this stream (circuit v2 spec).
                if stream is not None:
                    with contextlib.suppress(Exception), trio.move_on_after(RELAY_TIMEOUT_S):
                        await stream.close()
            if reserved:
                self.reserved[relay] = f"{addrs[0]}/p2p/{relay}{CIRCUIT}"
                log.info("reachable through relay %s", relay)
        return self.reserved != before

    def release_all(self) -> bool:
        """Stop advertising relayed addresses (the slots lapse by themselves)."""
        changed = bool(self.reserved)
        self.reserved.clear()
        return changed
