"""What a bridge adds to a request: the same AI requests sent straight to the OpenAI-compatible
server (what the bridge itself does) and sent by a member's node through the bridge over
libp2p, and a Stripe PaymentIntent made straight against localstripe and through a bridge.

    cd bench && ../.venv/bin/python bridges.py --requests 50

Nodes are separate processes on 127.0.0.1; the AI server is the test server (canned answers,
so the figures are the overhead, not a model's speed); localstripe stands in for Stripe. The
limit checked: the bridge adds at most BRIDGE_OVERHEAD_LIMIT_MS at the median.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import openai
import stripe
from common import wait_until

from tests.integration.nodes import spawned_nodes
from tests.integration.test_bridges_stripe import (
    BRIDGE_ENV,
    WEBHOOK_SECRET,
    bridge_config,
    knows_payment_bridge,
    seller_of,
)
from zion.devtools.ai_server import running_ai_server
from zion.devtools.localstripe import (
    SECRET_KEY,
    pay_with_card,
    register_webhook,
    running_localstripe,
)

KEY = "sk-bench"
PAID_SAMPLES = 5
#: localstripe sleeps this long before it posts each webhook (its webhooks.py).
LOCALSTRIPE_WEBHOOK_DELAY_MS = 1000
#: What the bridge may add to a request, at the median (a libp2p stream, two frames, a gateway).
BRIDGE_OVERHEAD_LIMIT_MS = 50.0


def timed(call: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(name: str, samples: list[float]) -> float:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    print(f"  {name:<34} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
    return p50


def verdict(what: str, direct: float, bridged: float) -> None:
    added = bridged - direct
    status = "PASS" if added <= BRIDGE_OVERHEAD_LIMIT_MS else "FAIL"
    print(
        f"  {status} {what}: the bridge adds {added:.1f} ms at the median"
        f" (limit {BRIDGE_OVERHEAD_LIMIT_MS:.0f} ms)"
    )


def direct_ai(base_url: str, count: int) -> tuple[list[float], list[float]]:
    async def run() -> tuple[list[float], list[float]]:
        client = openai.AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0)
        drafts, embeds = [], []
        for _ in range(count):
            start = time.perf_counter()
            stream = await client.chat.completions.create(
                model="test-chat",
                messages=[{"role": "user", "content": "Notes: oak table, seats six"}],
                stream=True,
            )
            async for _chunk in stream:
                pass
            drafts.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            await client.embeddings.create(model="test-embed", input=["oak table"] * 8)
            embeds.append((time.perf_counter() - start) * 1000)
        await client.close()
        return drafts, embeds

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50)
    count = parser.parse_args().requests
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_ai_server(KEY) as ai_url,
        running_localstripe() as stripe_url,
        spawned_nodes(Path(tmp)) as spawn,
    ):
        unlimited = {"quota_per_day": "0", "rate_per_minute": "100000", "burst": "10000"}
        config = bridge_config(stripe_url, **unlimited) + (
            f'\n[bridge.ai]\nenabled = true\nbase_url = "{ai_url}"\nmodel = "test-chat"\n'
            'embedding_model = "test-embed"\nquota_per_day = 0\ntotal_per_day = 0\n'
            "rate_per_minute = 100000\nburst = 10000\n"
        )
        bridge = spawn("bridge", config=config, env={**BRIDGE_ENV, "ZION_AI_API_KEY": KEY})
        member = spawn("member", bootstrap=[bridge.address])
        seller = seller_of(spawn, bridge)
        wait_until(lambda: member.api.get("/api/v1/bridges").json()["items"], 30, "announcement")

        print(f"AI, {count} requests each (draft: streamed; embeddings: 8 texts)")
        direct_drafts, direct_embeds = direct_ai(ai_url, count)

        def bridged_draft() -> None:
            with member.api.stream("POST", "/api/v1/ai/draft", json={"notes": "oak table"}) as r:
                r.raise_for_status()
                for _ in r.iter_lines():
                    pass

        def bridged_embed() -> None:
            member.api.post(
                "/api/v1/ai/embeddings", json={"texts": ["oak table"] * 8}
            ).raise_for_status()

        bridged_draft()  # the first request dials and negotiates: not what is measured
        d1 = summary("draft, straight to the server", direct_drafts)
        d2 = summary("draft, through the bridge", timed(bridged_draft, count))
        verdict("draft", d1, d2)
        e1 = summary("embeddings, straight to the server", direct_embeds)
        e2 = summary("embeddings, through the bridge", timed(bridged_embed, count))
        verdict("embeddings", e1, e2)

        print(f"Stripe PaymentIntents, {count} each")
        listings = [
            seller.create_listing(f"Item {i}", price={"amount": 1000 + i, "currency": "EUR"})
            for i in range(count + 1 + PAID_SAMPLES)
        ]
        wait_until(lambda: len(member.listing_ids()) >= len(listings), 60, "the listings")
        wait_until(lambda: knows_payment_bridge(member, seller, bridge), 30, "seller profile")
        client = stripe.StripeClient(
            SECRET_KEY,
            base_addresses={"api": stripe_url},
            http_client=stripe.HTTPXClient(allow_sync_methods=True),
        )
        direct = timed(
            lambda: client.v1.payment_intents.create(params={"amount": 1000, "currency": "eur"}),
            count,
        )
        pending = iter(listings)

        def bridged_pay() -> None:
            item = next(pending)
            response = member.api.post("/api/v1/payments", json={"listing": item["id"]})
            if response.status_code != 201:
                raise SystemExit(f"pay failed: {response.text}")

        bridged_pay()
        p1 = summary("PaymentIntent, straight to Stripe", direct)
        p2 = summary("PaymentIntent, through the bridge", timed(bridged_pay, count))
        print(
            f"  (through the bridge also checks the listing's signature, expiry, tombstone and"
            f" price, and stores the payment: {p2 - p1:.1f} ms in all)"
        )

        print(f"From the card confirmed to the buyer's order paid, {PAID_SAMPLES} payments")
        register_webhook(
            stripe_url,
            f"{bridge.base_url}/bridge/stripe/webhook",
            WEBHOOK_SECRET,
            ["payment_intent.succeeded"],
        )
        waits = []
        for item in listings[-PAID_SAMPLES:]:
            order = member.api.post("/api/v1/payments", json={"listing": item["id"]}).json()
            pi = order["payment_intent"]
            start = time.perf_counter()
            pay_with_card(stripe_url, pi)
            wait_until(
                lambda pi=pi: member.api.get(f"/api/v1/payments/{pi}").json()["status"] == "paid",
                30,
                "the receipt",
            )
            waits.append((time.perf_counter() - start) * 1000)
        summary("confirmed -> paid at the buyer", waits)
        print(f"  (localstripe waits {LOCALSTRIPE_WEBHOOK_DELAY_MS} ms before posting a webhook)")


if __name__ == "__main__":
    main()
