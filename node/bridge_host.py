"""Running bridges on this node ([bridge.stripe], [bridge.ai]): their servers, their
announcement to the network, and the gateway's view of bridges (known and running)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

import msgspec
import trio

from zion.gateway.services import BridgeFailure
from zion.node.ai import AiBackend
from zion.node.ai_bridge import AiBridge
from zion.node.bridge_client import BridgeDirectory
from zion.node.bridge_server import (
    AccessPolicy,
    BalanceOf,
    BridgeServer,
    TokenHolders,
    policy_name,
)
from zion.node.bridges import read_secret
from zion.node.clock import now_ms
from zion.node.config import BridgeAccessConfig, BridgeConfig
from zion.node.publishing import Publisher
from zion.node.stripe_bridge import StripeBridge, WebhookRefused
from zion.protocols.records import BRIDGE_SUBJECT, BridgeBody
from zion.storage.bridges import BridgeStore
from zion.storage.records import RecordStore

log = logging.getLogger(__name__)

#: A bridge announcement lives this long and is renewed at half of it, so a bridge that
#: stops disappears from members' lists within a day.
ANNOUNCE_TTL_MS: Final = 24 * 3600 * 1000
ANNOUNCE_EVERY_S: Final = ANNOUNCE_TTL_MS / 2000


class BridgeHost:
    """The bridges this node runs. Built before the node starts, so that a missing secret or
    a bad policy stops it at once, with the reason."""

    def __init__(
        self,
        config: BridgeConfig,
        records: RecordStore,
        store: BridgeStore,
        publisher: Publisher,
        balance_of: BalanceOf | None,
    ) -> None:
        self._config = config
        self._records = records
        self._publisher = publisher
        self.servers: list[BridgeServer] = []
        self.stripe: StripeBridge | None = None
        self.ai: AiBridge | None = None
        self._ai_backend: AiBackend | None = None
        self._details: dict[str, dict[str, Any]] = {}
        if config.stripe.enabled:
            stripe = config.stripe
            self.stripe = StripeBridge(
                stripe,
                read_secret(
                    "[bridge.stripe] secret key", stripe.secret_key_env, stripe.secret_key_file
                ),
                read_secret(
                    "[bridge.stripe] webhook secret",
                    stripe.webhook_secret_env,
                    stripe.webhook_secret_file,
                ),
                records,
                store,
                publisher,
            )
            policy = _policy(stripe, records, balance_of)
            self.servers.append(BridgeServer("stripe", stripe, policy, store, self.stripe.handle))
            self._details["stripe"] = self.stripe.offer_details()
        if config.ai.enabled:
            ai = config.ai
            self._ai_backend = AiBackend(
                base_url=ai.base_url,
                api_key=read_secret("[bridge.ai] API key", ai.api_key_env, ai.api_key_file),
                model=ai.model,
                embedding_model=ai.embedding_model,
                timeout_s=ai.timeout_s,
            )
            self.ai = AiBridge(self._ai_backend, ai.model, ai.embedding_model)
            policy = _policy(ai, records, balance_of)
            self.servers.append(BridgeServer("ai", ai, policy, store, self.ai.handle))
            self._details["ai"] = self.ai.offer_details()

    def details(self, service: str) -> dict[str, Any]:
        """What the announcement says of a service besides its terms (currencies, models)."""
        return self._details[service]

    def server(self, service: str) -> BridgeServer | None:
        return next((s for s in self.servers if s.service == service), None)

    async def announce_periodically(self, addrs: Callable[[], list[str]]) -> None:
        """Publish this node's bridge record now and before each expires."""
        if not self.servers:
            return
        while True:
            try:
                await self._announce(addrs())
            except Exception:  # announcing again later is all that can be done
                log.exception("bridge: cannot announce this node's bridges")
            await trio.sleep(ANNOUNCE_EVERY_S)

    async def _announce(self, addrs: list[str]) -> None:
        announce = self._config.announce or [a for a in addrs if "/ip4/0.0.0.0/" not in a]
        body = BridgeBody(
            name=self._config.name,
            offers=[server.offer(**self._details[server.service]) for server in self.servers],
            addrs=announce[:8],
        )
        head = self._records.head(self._publisher.author, BRIDGE_SUBJECT)
        now = now_ms()
        await self._publisher.publish(
            kind="bridge",
            subject=BRIDGE_SUBJECT,
            seq=(head.seq + 1) if head is not None else 1,
            body=body,
            expires=now + ANNOUNCE_TTL_MS,
        )
        log.info("bridge: announced %s", ", ".join(s.service for s in self.servers))

    async def aclose(self) -> None:
        if self._ai_backend is not None:
            await self._ai_backend.aclose()
        if self.stripe is not None:
            await self.stripe.aclose()


def _policy(
    config: BridgeAccessConfig, records: RecordStore, balance_of: BalanceOf | None
) -> AccessPolicy:
    holders = None
    if config.access == "token" and balance_of is not None:
        holders = TokenHolders(records, balance_of, int(config.min_token_balance))
    return AccessPolicy(policy_name(config.access), frozenset(config.allow), holders)


class StripeWebhookService:
    def __init__(self, bridge: StripeBridge) -> None:
        self._bridge = bridge

    async def receive(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        try:
            outcome = await self._bridge.webhook(payload, signature)
        except WebhookRefused as exc:
            log.warning("stripe bridge: refused a webhook: %s", exc.message)
            raise BridgeFailure(exc.status, "webhook-refused", exc.message, None) from None
        return {"event": outcome.event, "action": outcome.action, "receipt": outcome.receipt}


class BridgesService:
    """What the gateway shows about bridges: those this node knows, and those it runs."""

    def __init__(self, directory: BridgeDirectory, host: BridgeHost) -> None:
        self._directory = directory
        self._host = host
        self.webhooks = StripeWebhookService(host.stripe) if host.stripe is not None else None

    def known(self) -> list[dict[str, Any]]:
        return [known.to_json() for known in self._directory.all()]

    def running(self) -> list[dict[str, Any]]:
        return [
            {
                **msgspec.to_builtins(server.offer(**self._host.details(server.service))),
                "protocol": server.protocol,
                "served": server.served,
                "refused": dict(server.refused),
            }
            for server in self._host.servers
        ]
