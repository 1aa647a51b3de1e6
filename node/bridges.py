"""Bridges: services a node with a secret offers to other nodes over libp2p.

The operator's side is a ``BridgeServer`` per service: it takes one request per stream and
decides, before any work, whether to answer it: the per-peer rate limit, the access policy
(open, an allow list, or holders of the DAO token checked on-chain), the daily quota. Then
the service's handler answers with one or more reply frames.

The member's side is a ``BridgeDirectory`` (which bridges exist: configured, and announced in
``bridge`` records) and a ``BridgeClient`` that asks them, trying the next bridge when one is
unreachable. Every failure reaches the caller as a ``BridgeError`` with a reason.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import trio

from zion.gateway.services import BridgeFailure
from zion.node.clock import now_ms
from zion.node.config import BridgeAccessConfig
from zion.node.errors import NodeError
from zion.node.framed import FramedStream, StreamClosed
from zion.node.ratelimit import PeerRateLimiter
from zion.protocols import bridge
from zion.protocols.errors import ProtocolError
from zion.protocols.records import BridgeBody, BridgeOffer, ProfileBody
from zion.storage.bridges import BridgeStore
from zion.storage.records import RecordStore

log = logging.getLogger(__name__)

#: A request must arrive this soon after the stream opens.
REQUEST_TIMEOUT_S: Final = 10.0
#: The longest a bridge works on one answer (an AI answer streams for a while).
ANSWER_TIMEOUT_S: Final = 120.0
#: Token balances are asked of the chain at most this often per member.
TOKEN_CACHE_S: Final = 300.0
MAX_TOKEN_CACHE: Final = 4096
#: Bridges a member's node knows of from the network; more are ignored (newest kept).
MAX_KNOWN_BRIDGES: Final = 200
#: Bridges tried for one request before giving up.
MAX_BRIDGES_TRIED: Final = 3
#: A member's node waits at most this long for a whole answer (a bridge works on one for
#: up to ANSWER_TIMEOUT_S).
ANSWER_DEADLINE_S: Final = ANSWER_TIMEOUT_S + 10
#: Answers one service works on at once; more requests are told the bridge is busy.
MAX_CONCURRENT_ANSWERS: Final = 16

#: Why a member's request failed without a bridge's answer.
NO_BRIDGE: Final = "no-bridge"
UNREACHABLE: Final = "unreachable"
TIMEOUT: Final = "timeout"

Handler = Callable[[str, bridge.Request], AsyncGenerator[bridge.Reply]]


class BridgeError(NodeError):
    """A bridge request that did not succeed: ``reason`` is one of protocols.bridge.REASONS or
    NO_BRIDGE / UNREACHABLE / TIMEOUT; ``bridge`` the peer that said so, if one did."""

    def __init__(self, reason: str, message: str = "", bridge: str | None = None) -> None:
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason
        self.message = message or reason
        self.bridge = bridge


#: The HTTP status each reason becomes at the gateway.
_STATUS_OF_REASON: Final = {
    bridge.FORBIDDEN: 403,
    bridge.RATE_LIMITED: 429,
    bridge.QUOTA_EXHAUSTED: 429,
    bridge.BAD_REQUEST: 400,
    bridge.UPSTREAM_FAILED: 502,
    NO_BRIDGE: 503,
    UNREACHABLE: 503,
    TIMEOUT: 504,
}


def as_service_error(exc: BridgeError) -> BridgeFailure:
    """The gateway's view of a bridge failure; the listing checks' reasons are 422."""
    status = _STATUS_OF_REASON.get(exc.reason, 422)
    return BridgeFailure(status, exc.reason, exc.message, exc.bridge)


def read_secret(what: str, env: str, file: str) -> str:
    """A secret from the file named in config, else from the named environment variable."""
    if file:
        try:
            secret = Path(file).read_text("utf-8").strip()
        except OSError as exc:
            raise NodeError(f"{what}: cannot read {file}: {exc.strerror}") from None
    else:
        secret = os.environ.get(env, "").strip() if env else ""
    if not secret:
        where = f"the file {file}" if file else f"the environment variable {env}"
        raise NodeError(f"{what} is needed in {where}")
    return secret


# --- the operator's side -------------------------------------------------------------------


BalanceOf = Callable[[str], Awaitable[int]]


class TokenHolders:
    """Which DAO token holder is this peer? Its profile must link a wallet (the link is signed
    by the wallet, checked when the profile was stored) whose balance is at least the minimum.
    The answer is the wallet: one wallet linked from many peers is still one member."""

    def __init__(self, records: RecordStore, balance_of: BalanceOf, minimum: int) -> None:
        self._records = records
        self._balance_of = balance_of
        self._minimum = minimum
        self._cache: OrderedDict[str, tuple[float, str | None]] = OrderedDict()

    async def wallet_of(self, peer: str) -> str | None:
        now = time.monotonic()
        cached = self._cache.get(peer)
        if cached is not None and now - cached[0] < TOKEN_CACHE_S:
            return cached[1]
        profile = self._records.head(peer, "profile")
        if profile is None or not isinstance(profile.body, ProfileBody) or not profile.body.wallet:
            return None  # not cached: the profile may arrive any moment
        wallet = profile.body.wallet
        try:
            balance = await self._balance_of(wallet)
        except Exception as exc:  # the chain is down: deny, and ask again next time
            log.warning("bridge: cannot check %s's token balance: %s", peer, exc)
            return None
        holder = wallet.lower() if balance >= self._minimum else None
        self._cache[peer] = (now, holder)
        self._cache.move_to_end(peer)
        if len(self._cache) > MAX_TOKEN_CACHE:
            self._cache.popitem(last=False)
        return holder

    async def holds(self, peer: str) -> bool:
        return await self.wallet_of(peer) is not None


@dataclass(frozen=True)
class AccessPolicy:
    """Who may use a service. Validates itself: an allow list needs peers, token access needs
    a way to check balances."""

    mode: Literal["open", "allowlist", "token"]
    allow: frozenset[str] = frozenset()
    token_holders: TokenHolders | None = None

    def __post_init__(self) -> None:
        if self.mode == "token" and self.token_holders is None:
            raise NodeError('access = "token" needs the DAO: set [chain] rpc_url and contracts')
        if self.mode == "allowlist" and not self.allow:
            raise NodeError('access = "allowlist" needs at least one peer ID in allow')

    async def account(self, peer: str) -> str | None:
        """Who is asking, as limits and quotas count them (the peer, or for token access the
        wallet), or None if they may not ask at all."""
        if self.mode == "open":
            return peer
        if self.mode == "allowlist":
            return peer if peer in self.allow else None
        assert self.token_holders is not None
        wallet = await self.token_holders.wallet_of(peer)
        return f"wallet:{wallet}" if wallet is not None else None


class BridgeServer:
    """One service's inbound side: limits and policy first, then the handler's answer."""

    def __init__(
        self,
        service: Literal["stripe", "ai"],
        config: BridgeAccessConfig,
        policy: AccessPolicy,
        store: BridgeStore,
        handler: Handler,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.protocol = bridge.PROTOCOL_OF_SERVICE[service]
        self._requests = bridge.STRIPE_REQUESTS if service == "stripe" else bridge.AI_REQUESTS
        self._config = config
        self._policy = policy
        self._store = store
        self._handler = handler
        self._clock = clock
        # Per peer before the policy is asked (asking may cost a chain call), then per account.
        self._peer_limiter = PeerRateLimiter(config.rate_per_minute / 60, config.burst)
        self._account_limiter = PeerRateLimiter(config.rate_per_minute / 60, config.burst)
        self._working = trio.CapacityLimiter(MAX_CONCURRENT_ANSWERS)
        self.served = 0
        self.refused: dict[str, int] = {}

    def offer(self, **extra: Any) -> BridgeOffer:
        config = self._config
        return BridgeOffer(
            service=self.service,
            access=policy_name(config.access),
            terms=config.terms,
            quota_per_day=config.quota_per_day or None,
            **extra,
        )

    async def serve(self, stream: Any) -> None:
        asker = str(stream.muxed_conn.peer_id.to_base58())
        framed = FramedStream(stream, bridge.MAX_REQUEST_BYTES)
        try:
            with trio.fail_after(REQUEST_TIMEOUT_S):
                data = await framed.receive()
            with trio.move_on_after(ANSWER_TIMEOUT_S) as answering:
                async with aclosing(self.answer(asker, data)) as replies:
                    async for reply in replies:
                        await framed.send(bridge.encode_reply(reply))
            if answering.cancelled_caught:
                with trio.fail_after(1):
                    await framed.send(
                        bridge.encode_reply(
                            bridge.error(bridge.UPSTREAM_FAILED, "the answer took too long")
                        )
                    )
            with trio.fail_after(1):
                await stream.close()
        except (ProtocolError, StreamClosed, trio.TooSlowError) as exc:
            log.info("bridge %s: dropping a request from %s: %s", self.service, asker, exc)
            await _reset(stream)
        except Exception as exc:  # the asker vanished mid-answer
            log.debug("bridge %s: request from %s ended: %r", self.service, asker, exc)
            await _reset(stream)

    async def answer(self, asker: str, data: bytes) -> AsyncGenerator[bridge.Reply]:
        """The replies to one request. Never raises for what the asker sent."""
        refusal, account = await self._admit(asker)
        if refusal is not None:
            self.refused[refusal.reason] = self.refused.get(refusal.reason, 0) + 1
            yield refusal
            return
        assert account is not None
        try:
            request = bridge.decode_request(data, self._requests)
        except ProtocolError as exc:
            yield bridge.error(bridge.BAD_REQUEST, str(exc))
            return
        config = self._config
        spent = self._store.take_quota(
            self.service, account, now_ms(), config.quota_per_day, config.total_per_day
        )
        if spent is not None:
            self.refused[bridge.QUOTA_EXHAUSTED] = self.refused.get(bridge.QUOTA_EXHAUSTED, 0) + 1
            yield bridge.error(bridge.QUOTA_EXHAUSTED, _quota_message(config, spent))
            return
        try:
            self._working.acquire_nowait()
        except trio.WouldBlock:
            yield bridge.error(bridge.RATE_LIMITED, "the bridge is busy; try again shortly")
            return
        try:
            self.served += 1
            async with aclosing(self._handler(asker, request)) as replies:
                async for reply in replies:
                    yield reply
        finally:
            self._working.release()

    async def answer_own(self, asker: str, data: bytes) -> AsyncGenerator[bridge.Reply]:
        """This node's own request (its member using its own bridge): no limits apply."""
        try:
            request = bridge.decode_request(data, self._requests)
        except ProtocolError as exc:
            yield bridge.error(bridge.BAD_REQUEST, str(exc))
            return
        async with aclosing(self._handler(asker, request)) as replies:
            async for reply in replies:
                yield reply

    async def _admit(self, asker: str) -> tuple[bridge.Error | None, str | None]:
        """(refusal, None), or (None, the account the request counts against)."""
        slow_down = bridge.error(bridge.RATE_LIMITED, "too many requests; slow down")
        if not self._peer_limiter.allow(asker, self._clock()):
            return slow_down, None
        account = await self._policy.account(asker)
        if account is None:
            return bridge.error(bridge.FORBIDDEN, _forbidden_message(self._policy.mode)), None
        if account != asker and not self._account_limiter.allow(account, self._clock()):
            return slow_down, None
        return None, account


def _quota_message(config: BridgeAccessConfig, spent: str) -> str:
    if spent == "member":
        return f"{config.quota_per_day} requests a day per member; try again tomorrow (UTC)"
    return "the bridge has answered all it will today; try again tomorrow (UTC)"


def policy_name(access: str) -> Literal["open", "allowlist", "token"]:
    if access == "allowlist":
        return "allowlist"
    if access == "token":
        return "token"
    return "open"


def _forbidden_message(mode: str) -> str:
    if mode == "token":
        return "this bridge serves holders of the DAO token (link a wallet in your profile)"
    return "this bridge serves only the members on its allow list"


# --- the member's side ---------------------------------------------------------------------


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
        import msgspec

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
        only these peers (a seller's payment bridges); ``configured_only``: none that merely
        announced themselves."""
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
            await _close(stream)


def _raise_error(reply: bridge.Reply, peer: str) -> bridge.Reply:
    if isinstance(reply, bridge.Error):
        raise BridgeError(reply.reason, reply.message, peer)
    return reply


async def _close(stream: Any) -> None:
    """Close the stream even while being cancelled (a member who gave up waiting): shielded,
    and reset if a close does not finish within a second."""
    with trio.CancelScope(shield=True):
        with trio.move_on_after(1) as closing:
            try:
                await stream.close()
            except Exception:  # already gone
                return
        if closing.cancelled_caught:
            await _reset(stream)


async def _reset(stream: Any) -> None:
    try:
        await stream.reset()
    except Exception:  # already gone
        return
