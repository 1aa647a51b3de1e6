"""Records that sync brought in are gossiped on: news only, within a budget."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import make_listing
from zion.node import publishing
from zion.node.clock import now_ms
from zion.node.events import EventFeed
from zion.node.ingest import Ingest
from zion.node.publishing import Publisher
from zion.protocols import gossip, records, sync
from zion.storage.database import Database
from zion.storage.records import RecordStore

CATALOGUE = 2000


def _publisher(tmp_path: Path) -> Publisher:
    store = RecordStore(Database(tmp_path / "zion.db"))
    return Publisher(
        Ed25519PrivateKey.generate(), Ingest(store, sync.ItemIndex(), EventFeed(store)), 0
    )


async def _gossiped(publisher: Publisher) -> list[bytes]:
    sent: list[bytes] = []

    async def send(topic: str, data: bytes) -> None:
        assert topic == gossip.TOPIC_LISTINGS
        sent.extend(gossip.decode_batch(data))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(publisher.run, send)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    return sent


async def test_news_that_sync_brought_is_gossiped_on_and_history_is_not(tmp_path: Path) -> None:
    publisher = _publisher(tmp_path)
    key = Ed25519PrivateKey.generate()
    now = now_ms()
    news = make_listing(key, subject="new", created=now - 60_000)
    history = make_listing(key, subject="old", created=now - publishing.FORWARD_WINDOW_MS - 1)
    publisher.forward([history, news])
    assert await _gossiped(publisher) == [news.block]


async def test_forwarding_stays_within_its_budget(tmp_path: Path) -> None:
    publisher = _publisher(tmp_path)
    key = Ed25519PrivateKey.generate()
    many = [make_listing(key, subject=f"s{n}", created=now_ms()) for n in range(300)]
    publisher.forward(many)
    assert len(await _gossiped(publisher)) == int(publishing.FORWARD_SHARE * 1000)


async def test_gossip_is_paced_below_what_receivers_take(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A member publishing a big catalogue at once: receivers take 100 records a second in
    bursts of 1000 (the defaults) and cut off a peer far beyond; we stay within 80 %."""
    publisher = _publisher(tmp_path)
    body = records.ListingBody(
        title="catalogue", price=records.Price(amount=1, currency="EUR"), category="test"
    )
    for n in range(CATALOGUE):
        await publisher.publish(kind="listing", subject=f"c{n}", seq=1, body=body)
    sent: list[tuple[float, int]] = []

    async def send(topic: str, data: bytes) -> None:
        sent.append((trio.current_time(), len(gossip.decode_batch(data))))

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(publisher.run, send)
        await trio.sleep(60)
        nursery.cancel_scope.cancel()
    total = 0
    for at, count in sent:
        total += count
        assert total <= 800 + 80 * (at - start) + 1, (at - start, total)
    assert total == CATALOGUE  # and it does get there
