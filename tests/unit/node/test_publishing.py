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
from zion.protocols import gossip, sync
from zion.storage.database import Database
from zion.storage.records import RecordStore


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
    assert len(await _gossiped(publisher)) == publishing.FORWARD_BURST
