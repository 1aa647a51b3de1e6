"""The Stripe bridge's checks, against localstripe: what a buyer's node could send that an
honest one would not (a tampered record, the wrong price), and listings that are no longer for
sale. Each is refused with its reason, creates no PaymentIntent and publishes no receipt."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import DAY, make_listing
from zion.devtools.localstripe import PUBLISHABLE_KEY, SECRET_KEY, running_localstripe
from zion.node import config
from zion.node.clock import now_ms
from zion.node.events import EventFeed
from zion.node.ingest import Ingest
from zion.node.publishing import Publisher
from zion.node.stripe_bridge import StripeBridge, WebhookRefused, idempotency_key
from zion.protocols import bridge, encoding, identity, records, sync
from zion.storage.bridges import BridgeStore
from zion.storage.database import Database
from zion.storage.records import RecordStore

SELLER = Ed25519PrivateKey.from_private_bytes(bytes([5] * 32))
BUYER = identity.peer_id_of(Ed25519PrivateKey.from_private_bytes(bytes([6] * 32)))
WEBHOOK_SECRET = "whsec_unit"


@pytest.fixture(scope="module")
def localstripe() -> Iterator[str]:
    with running_localstripe() as url:
        yield url


@dataclass
class Bridge:
    stripe: StripeBridge
    records: RecordStore
    store: BridgeStore
    localstripe: str

    def intents(self) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.localstripe}/v1/payment_intents",
            params={"limit": 100},
            headers={"Authorization": f"Bearer {SECRET_KEY}"},
        )
        return list(response.json()["data"])

    def receipts(self) -> list[records.Record]:
        return self.records.of_kind("receipt")


@pytest.fixture
async def stripe_bridge(tmp_path: Path, localstripe: str) -> AsyncIterator[Bridge]:
    db = Database(tmp_path / "zion.db")
    store = RecordStore(db)
    ingest = Ingest(store, sync.ItemIndex(), EventFeed(store))
    publisher = Publisher(Ed25519PrivateKey.generate(), ingest, window_s=0)
    settings = msgspec.structs.replace(
        config.load(None).bridge.stripe,
        enabled=True,
        api_base=localstripe,
        publishable_key=PUBLISHABLE_KEY,
        currencies=["EUR"],
    )
    bridges = BridgeStore(db)
    made = StripeBridge(settings, SECRET_KEY, WEBHOOK_SECRET, store, bridges, publisher)
    yield Bridge(made, store, bridges, localstripe)
    await made.aclose()
    db.close()


def listing(**fields: Any) -> records.Record:
    now = now_ms()
    fields.setdefault("created", now)
    return make_listing(SELLER, **fields)


def pay_for(record: records.Record, *, send_record: bool = True, **changes: Any) -> bridge.Pay:
    body = record.body
    assert isinstance(body, records.ListingBody)
    fields: dict[str, Any] = {
        "listing": record.id,
        "amount": body.price.amount,
        "currency": body.price.currency,
        "record": record.block if send_record else None,
    }
    fields.update(changes)
    return bridge.Pay(**fields)


async def refused(b: Bridge, request: bridge.Pay) -> str:
    before = len(b.intents())
    reply = await b.stripe.pay(BUYER, request)
    assert isinstance(reply, bridge.Error), reply
    assert len(b.intents()) == before, "a refused request must not reach Stripe"
    assert b.receipts() == []
    return reply.reason


async def test_a_verified_listing_gets_a_payment_intent(stripe_bridge: Bridge) -> None:
    record = listing()
    reply = await stripe_bridge.stripe.pay(BUYER, pay_for(record))
    assert isinstance(reply, bridge.PaymentCreated)
    assert reply.amount == 12000 and reply.currency == "EUR"
    assert reply.publishable_key == PUBLISHABLE_KEY
    stored = stripe_bridge.store.payment(reply.payment_intent)
    assert stored is not None and (stored.buyer, stored.seller) == (BUYER, record.author)
    assert idempotency_key(record.id, BUYER, 12000, "EUR") != idempotency_key(
        record.id, BUYER, 12001, "EUR"
    )


async def test_a_tampered_price_breaks_the_signature(stripe_bridge: Bridge) -> None:
    record = listing()
    value = encoding.decode(record.block)
    value["body"]["price"]["amount"] = 1
    tampered = encoding.encode(value)
    request = bridge.Pay(listing=record.id, amount=1, currency="EUR", record=tampered)
    assert await refused(stripe_bridge, request) == bridge.BAD_SIGNATURE


async def test_the_price_must_be_the_listings(stripe_bridge: Bridge) -> None:
    record = listing()
    assert await refused(stripe_bridge, pay_for(record, amount=100)) == bridge.PRICE_MISMATCH
    assert await refused(stripe_bridge, pay_for(record, currency="USD")) == bridge.PRICE_MISMATCH


async def test_an_expired_listing_cannot_be_paid(stripe_bridge: Bridge) -> None:
    old = listing(created=now_ms() - 31 * DAY)  # expires 30 days after it was created
    assert await refused(stripe_bridge, pay_for(old)) == bridge.EXPIRED


async def test_an_unknown_listing_cannot_be_paid(stripe_bridge: Bridge) -> None:
    record = listing()
    request = pay_for(record, send_record=False)
    assert await refused(stripe_bridge, request) == bridge.UNKNOWN_LISTING


async def test_a_deleted_listing_cannot_be_paid(stripe_bridge: Bridge) -> None:
    record = listing()
    stripe_bridge.records.apply(record, now_ms())
    tombstone = records.sign_record(
        SELLER,
        kind="tombstone",
        subject=record.subject,
        seq=record.seq + 1,
        created=now_ms(),
        body=records.TombstoneBody(of="listing"),
    )
    stripe_bridge.records.apply(tombstone, now_ms())
    assert await refused(stripe_bridge, pay_for(record)) == bridge.DELETED


async def test_the_newest_version_sets_the_price(stripe_bridge: Bridge) -> None:
    first = listing()
    newer = listing(seq=2, price=records.Price(amount=9000, currency="EUR"))
    stripe_bridge.records.apply(newer, now_ms())
    # The buyer saw the old version: the seller has changed the price since.
    assert await refused(stripe_bridge, pay_for(first)) == bridge.PRICE_MISMATCH
    reply = await stripe_bridge.stripe.pay(BUYER, pay_for(first, amount=9000))
    assert isinstance(reply, bridge.PaymentCreated) and reply.amount == 9000


async def test_other_refusals(stripe_bridge: Bridge) -> None:
    usd = listing(price=records.Price(amount=500, currency="USD"))
    assert await refused(stripe_bridge, pay_for(usd)) == bridge.UNSUPPORTED_CURRENCY
    mine = listing()
    reply = await stripe_bridge.stripe.pay(mine.author, pay_for(mine))
    assert isinstance(reply, bridge.Error) and reply.reason == bridge.OWN_LISTING
    other = listing(subject="other")
    request = bridge.Pay(
        listing=mine.id, amount=12000, currency="EUR", record=other.block
    )  # a valid record, but not the one named
    assert await refused(stripe_bridge, request) == bridge.BAD_REQUEST


async def test_a_webhook_for_another_amount_publishes_nothing(stripe_bridge: Bridge) -> None:
    import hashlib
    import hmac
    import json
    import time

    reply = await stripe_bridge.stripe.pay(BUYER, pay_for(listing()))
    assert isinstance(reply, bridge.PaymentCreated)
    event = {
        "id": "evt_amount",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "data": {"object": {"id": reply.payment_intent, "amount": 1, "currency": "eur"}},
    }
    payload = json.dumps(event).encode()
    stamp = int(time.time())
    digest = hmac.new(WEBHOOK_SECRET.encode(), f"{stamp}.".encode() + payload, hashlib.sha256)
    with pytest.raises(WebhookRefused) as refusal:
        await stripe_bridge.stripe.webhook(payload, f"t={stamp},v1={digest.hexdigest()}")
    assert refusal.value.status == 422
    assert stripe_bridge.receipts() == []


async def test_a_listing_from_the_future_is_not_taken(stripe_bridge: Bridge) -> None:
    ahead = listing(created=now_ms() + 3_600_000)
    assert await refused(stripe_bridge, pay_for(ahead)) == bridge.BAD_REQUEST


async def test_a_listing_published_again_after_a_deletion_can_be_paid(
    stripe_bridge: Bridge,
) -> None:
    tombstone = records.sign_record(
        SELLER,
        kind="tombstone",
        subject="bike1",
        seq=1,
        created=now_ms(),
        body=records.TombstoneBody(of="listing"),
    )
    stripe_bridge.records.apply(tombstone, now_ms())
    again = listing(seq=2)
    reply = await stripe_bridge.stripe.pay(BUYER, pay_for(again))
    assert isinstance(reply, bridge.PaymentCreated)
