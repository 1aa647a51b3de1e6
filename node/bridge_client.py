"""A member's side of bridges: which exist (``BridgeDirectory``: configured, and announced in
``bridge`` records) and asking them (``BridgeClient``), trying the next bridge when one is
unreachable and holding each to the protocol. Every failure is a ``BridgeError``."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgspec
import trio

from zion.node.bridges import ANSWER_TIMEOUT_S, NO_BRIDGE, TIMEOUT, UNREACHABLE, BridgeError
from zion.node.clock import now_ms
from zion.node.framed import FramedStream, StreamClosed, close_stream
from zion.protocols import bridge
from zion.protocols.errors import ProtocolError
from zion.protocols.records import BridgeBody, BridgeOffer
from zion.storage.records import RecordStore

log = logging.getLogger(__name__)

#: Bridges a member's node knows of from the network; more are ignored (newest kept).
MAX_KNOWN_BRIDGES: Final = 200
#: Bridges tried for one request before giving up.
MAX_BRIDGES_TRIED: Final = 3
#: A member's node waits at most this long for a whole answer (a bridge works on one for
#: up to ANSWER_TIMEOUT_S).
ANSWER_DEADLINE_S: Final = ANSWER_TIMEOUT_S + 10


@dataclass(frozen=True)
class KnownBridge:
    peer_id: str
    name: str
    offers: tuple[BridgeOffer, ...]
    addrs: tuple[str, ...]
    #: Named in this node's [bridges] config (then it is tried first, even unannounced).
    configured: bool
    expires: int | None

    def offer(self, service: str) -> BridgeOffer | None:
        return next((offer for offer in self.offers if offer.service == service), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "peer_id": self.peer_id,
            "name": self.name,
            "offers": [msgspec.to_builtins(offer) for offer in self.offers],
            "addrs": list(self.addrs),
            "configured": self.configured,
            "expires": self.expires,
        }


class BridgeDirectory:
    """The bridges this node may use, best first: configured ones in config order, then
    announced ones (newest announcement first)."""

    def __init__(
        self,
        records: RecordStore,
        configured: dict[str, list[str]],
        discover: bool,
        own_peer_id: str,
    ) -> None:
        self._records = records
        self._configured = configured
        self._discover = discover
        self._own = own_peer_id

    def announced(self) -> list[KnownBridge]:
        now = now_ms()
        found = []
        for record in self._records.of_kind("bridge", MAX_KNOWN_BRIDGES):
            body = record.body
            if not isinstance(body, BridgeBody) or (record.expires or 0) <= now:
                continue
            found.append(
                KnownBridge(
                    peer_id=record.author,
                    name=body.name,
                    offers=tuple(body.offers),
                    addrs=tuple(body.addrs),
                    configured=False,
                    expires=record.expires,
                )
            )
        return found

    def all(self) -> list[KnownBridge]:
        announced = {
            known.peer_id: known for known in self.announced() if known.peer_id != self._own
        }
        out: list[KnownBridge] = []
        for service, addrs in self._configured.items():
            for addr in addrs:
                peer = addr.rsplit("/p2p/", 1)[1]
                if any(known.peer_id == peer for known in out):
                    continue
                seen = announced.pop(peer, None)
                offers = (
                    seen.offers
                    if seen
                    else (BridgeOffer(service=_service(service), access="open"),)
                )
                out.append(
                    KnownBridge(
                        peer_id=peer,
                        name=seen.name if seen else "configured bridge",
                        offers=offers,
                        addrs=(addr, *(seen.addrs if seen else ())),
                        configured=True,
                        expires=seen.expires if seen else None,
                    )
                )
        if self._discover:
            out.extend(announced.values())
        return out

    def configured(self, service: str) -> list[str]:
        """The peer IDs of the bridges this node's config names for ``service``, in order."""
        return [addr.rsplit("/p2p/", 1)[1] for addr in self._configured.get(service, [])]

    def for_service(
        self, service: str, *, among: Collection[str] | None = None, configured_only: bool = False
    ) -> list[KnownBridge]:
        """Bridges offering ``service``, configured ones first in config order. ``among``:
        only these peers (a seller's payment bridges), and all of them: one whose announcement
        has not arrived is still tried, by peer ID (the seller vouches for it; it may be
        connected already, or the peerstore may know its addresses). ``configured_only``: none
        that merely announced themselves."""
        configured = self.configured(service)
        candidates = [
            known
            for known in self.all()
            if (known.peer_id in configured or known.offer(service) is not None)
            and (among is None or known.peer_id in among)
            and (known.peer_id in configured or not configured_only)
        ]
        candidates.sort(
            key=lambda known: (
                configured.index(known.peer_id) if known.peer_id in configured else len(configured)
            )
        )
        listed = {known.peer_id for known in candidates}
        for peer in among or ():
            if peer not in listed and peer != self._own:
                offer = BridgeOffer(service=_service(service), access="open")
                candidates.append(KnownBridge(peer, "payment bridge", (offer,), (), False, None))
        return candidates


def _service(name: str) -> Literal["stripe", "ai"]:
    return "stripe" if name == "stripe" else "ai"


OpenStream = Callable[[str, str], Awaitable[Any]]
Connect = Callable[[str], Awaitable[str]]
LocalAnswer = Callable[[str, bytes], AsyncGenerator[bridge.Reply]]


class BridgeClient:
    def __init__(
        self,
        directory: BridgeDirectory,
        open_stream: OpenStream,
        connect: Connect,
        connected: Callable[[], list[str]],
        timeout_s: float,
        own_peer_id: str,
        local: dict[str, LocalAnswer] | None = None,
    ) -> None:
        """``local``: services this node runs itself, answered without the network (an
        operator using its own bridge)."""
        self.directory = directory
        self._open_stream = open_stream
        self._connect = connect
        self._connected = connected
        self._timeout_s = timeout_s
        self._own = own_peer_id
        self._local = local or {}

    def available(self, service: str, *, configured_only: bool = False) -> bool:
        return service in self._local or bool(
            self.directory.for_service(service, configured_only=configured_only)
        )

    async def call(
        self,
        service: str,
        request: bridge.Request,
        *,
        among: Collection[str] | None = None,
        configured_only: bool = False,
    ) -> AsyncGenerator[tuple[str, bridge.Reply]]:
        """(bridge peer ID, reply) for each reply of the first bridge that answers, ending with
        the final one. Raises BridgeError for an ``error`` reply, an answer that breaks the
        protocol or ends early, or when no bridge answers. ``among`` and ``configured_only``
        narrow the bridges tried (BridgeDirectory.for_service)."""
        data = bridge.encode_request(request)
        expected = bridge.expected_replies(request)
        if service in self._local and (among is None or self._own in among):
            async with aclosing(self._local[service](self._own, data)) as replies:
                async for reply in replies:
                    yield self._own, _raise_error(reply, self._own)
            return
        candidates = self.directory.for_service(
            service, among=among, configured_only=configured_only
        )[:MAX_BRIDGES_TRIED]
        if not candidates:
            raise BridgeError(NO_BRIDGE, f"no {service} bridge for this is known to this node")
        last: BridgeError | None = None
        for known in candidates:
            try:
                stream = await self._open(known, bridge.PROTOCOL_OF_SERVICE[service])
            except BridgeError as exc:
                last = exc
                continue
            exchange = self._exchange(known.peer_id, stream, data, expected)
            async with aclosing(exchange) as replies:
                async for reply in replies:
                    yield known.peer_id, reply
            return
        assert last is not None
        raise last

    async def _open(self, known: KnownBridge, protocol: str) -> Any:
        try:
            with trio.fail_after(self._timeout_s):
                if known.peer_id not in self._connected():
                    for addr in known.addrs:
                        try:
                            await self._connect(addr)
                            break
                        except Exception as exc:  # py-libp2p dials fail in many types
                            log.debug("bridge %s not reachable at %s: %s", known.peer_id, addr, exc)
                return await self._open_stream(known.peer_id, protocol)
        except trio.TooSlowError:
            raise BridgeError(TIMEOUT, "the bridge did not answer in time", known.peer_id) from None
        except Exception as exc:  # as above
            raise BridgeError(
                UNREACHABLE,
                f"bridge {known.name} is not reachable ({type(exc).__name__})",
                known.peer_id,
            ) from None

    async def _exchange(
        self, peer: str, stream: Any, data: bytes, expected: tuple[type[bridge.Reply], ...]
    ) -> AsyncGenerator[bridge.Reply]:
        """The bridge's replies, each within ``timeout_s`` and all within ANSWER_DEADLINE_S,
        of the kinds that answer this request, ending with a final one."""
        framed = FramedStream(stream, bridge.MAX_REPLY_BYTES)
        deadline = trio.current_time() + ANSWER_DEADLINE_S
        frames = chars = 0
        try:
            with trio.fail_after(self._timeout_s):
                await framed.send(data)
            while True:
                with trio.fail_at(min(deadline, trio.current_time() + self._timeout_s)):
                    try:
                        reply = bridge.decode_reply(await framed.receive())
                    except StreamClosed:
                        raise BridgeError(
                            UNREACHABLE, "the bridge ended its answer early", peer
                        ) from None
                if not isinstance(reply, expected):
                    raise BridgeError(
                        UNREACHABLE, f"the bridge answered with {type(reply).__name__}", peer
                    )
                frames += 1
                chars += len(reply.text) if isinstance(reply, bridge.Chunk) else 0
                if frames > bridge.MAX_ANSWER_FRAMES or chars > bridge.MAX_ANSWER_CHARS:
                    raise BridgeError(UNREACHABLE, "the bridge's answer is too long", peer)
                yield _raise_error(reply, peer)
                if isinstance(reply, bridge.PaymentCreated | bridge.Done | bridge.Vectors):
                    return
        except trio.TooSlowError:
            raise BridgeError(TIMEOUT, "the bridge stopped answering", peer) from None
        except ProtocolError as exc:
            raise BridgeError(UNREACHABLE, f"bad answer from the bridge: {exc}", peer) from None
        except BridgeError:
            raise
        except Exception as exc:  # the stream broke
            raise BridgeError(
                UNREACHABLE, f"the bridge went away ({type(exc).__name__})", peer
            ) from None
        finally:
            await close_stream(stream)


def _raise_error(reply: bridge.Reply, peer: str) -> bridge.Reply:
    """An ``error`` reply as a BridgeError. A reason Zion bridges do not give is reported as
    the upstream failing: the reason becomes an HTTP status and a problem code at the
    gateway, which a bridge must not choose freely."""
    if isinstance(reply, bridge.Error):
        if reply.reason not in bridge.REASONS:
            message = f"the bridge refused ({reply.reason[:40]}): {reply.message}"
            raise BridgeError(bridge.UPSTREAM_FAILED, message, peer)
        raise BridgeError(reply.reason, reply.message, peer)
    return reply
