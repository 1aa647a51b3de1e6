"""A bridge's inbound side: one ``BridgeServer`` per service it runs.

It takes one request per stream and decides, before any work, whether to answer it: a rate
limit per peer, the access policy (open, an allow list, or holders of the DAO token checked
on-chain), a rate limit and a daily quota per member, a daily cap for everyone together and a
bound on answers in flight. Then the service's handler answers with one or more reply frames.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Final, Literal

import trio

from zion.node.bridges import ANSWER_TIMEOUT_S
from zion.node.clock import now_ms
from zion.node.config import BridgeAccessConfig
from zion.node.errors import NodeError
from zion.node.framed import FramedStream, StreamClosed, reset_stream
from zion.node.ratelimit import PeerRateLimiter
from zion.protocols import bridge
from zion.protocols.errors import ProtocolError
from zion.protocols.records import BridgeOffer, Price, ProfileBody
from zion.storage.bridges import BridgeStore
from zion.storage.records import RecordStore

log = logging.getLogger(__name__)

#: A request must arrive this soon after the stream opens.
REQUEST_TIMEOUT_S: Final = 10.0
#: Token balances are asked of the chain at most this often per member.
TOKEN_CACHE_S: Final = 300.0
MAX_TOKEN_CACHE: Final = 4096
#: Answers one service works on at once; more requests are told the bridge is busy.
MAX_CONCURRENT_ANSWERS: Final = 16

Handler = Callable[[str, bridge.Request], AsyncGenerator[bridge.Reply]]
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
        price = (
            Price(amount=config.price_amount, currency=config.price_currency)
            if config.price_amount
            else None
        )
        return BridgeOffer(
            service=self.service,
            access=policy_name(config.access),
            terms=config.terms,
            price=price,
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
            await reset_stream(stream)
        except Exception as exc:  # the asker vanished mid-answer
            log.debug("bridge %s: request from %s ended: %r", self.service, asker, exc)
            await reset_stream(stream)

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
