from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import DAY, NOW, make_listing
from zion.protocols import records
from zion.storage.database import MIGRATIONS, Database, _statements
from zion.storage.errors import StorageError
from zion.storage.records import Outcome, RecordStore, fts_query, sync_item


@pytest.fixture
def store(tmp_path: Path) -> RecordStore:
    return RecordStore(Database(tmp_path / "zion.db"))


def tombstone(key: Ed25519PrivateKey, subject: str, seq: int) -> records.Record:
    return records.sign_record(
        key,
        kind="tombstone",
        subject=subject,
        seq=seq,
        created=NOW + seq,
        body=records.TombstoneBody(of="listing"),
    )


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    db = Database(tmp_path / "zion.db")
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "zion.db"
    Database(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StorageError, match="newer"):
        Database(path)


def test_store_duplicate_and_stale(store: RecordStore, key: Ed25519PrivateKey) -> None:
    v1 = make_listing(key, seq=1)
    v2 = make_listing(key, seq=2, title="Blue bike", created=NOW + 1)
    assert store.apply(v1, NOW).outcome is Outcome.STORED
    assert store.apply(v1, NOW).outcome is Outcome.DUPLICATE
    applied = store.apply(v2, NOW)
    assert applied.outcome is Outcome.STORED
    assert applied.replaced == sync_item(v1)
    assert store.apply(v1, NOW).outcome is Outcome.STALE
    head = store.head(v1.author, "bike1")
    assert head is not None and head.id == v2.id
    assert store.count() == 1


def test_tombstone_is_kept_and_blocks_resurrection(
    store: RecordStore, key: Ed25519PrivateKey
) -> None:
    v1 = make_listing(key, seq=1)
    v2 = make_listing(key, seq=2, created=NOW + 1, title="Blue bike")
    dead = tombstone(key, "bike1", 3)
    # Out of order: the delete arrives first, then the versions it deletes.
    assert store.apply(dead, NOW).stored
    assert store.apply(v2, NOW).outcome is Outcome.STALE
    assert store.apply(v1, NOW).outcome is Outcome.STALE
    assert store.listings().items == []
    head = store.head(v1.author, "bike1")
    assert head is not None and head.kind == "tombstone"


def test_search_filters_and_paging(store: RecordStore, key: Ed25519PrivateKey) -> None:
    for n in range(7):
        store.apply(
            make_listing(
                key,
                subject=f"s{n}",
                created=NOW + n,
                title=f"Item {n}",
                description="vintage lamp" if n % 2 else "oak table",
            ),
            NOW,
        )
    assert [r.subject for r in store.listings(query="lamp").items] == ["s5", "s3", "s1"]
    assert [r.subject for r in store.listings(query="tab").items] == ["s6", "s4", "s2", "s0"]
    assert store.listings(query="vintage oak").items == []
    assert store.listings(query='"); DROP TABLE listings; --').items == []
    first = store.listings(limit=3)
    assert [r.subject for r in first.items] == ["s6", "s5", "s4"]
    assert first.next is not None
    second = store.listings(limit=3, cursor=first.next)
    assert [r.subject for r in second.items] == ["s3", "s2", "s1"]
    third = store.listings(limit=3, cursor=second.next)
    assert [r.subject for r in third.items] == ["s0"] and third.next is None
    assert store.listings(category="none").items == []
    assert len(store.listings(author=records.decode_record(first.items[0].block).author).items) == 7
    with pytest.raises(StorageError):
        store.listings(cursor="garbage")


def test_price_and_category_filters(store: RecordStore, key: Ed25519PrivateKey) -> None:
    prices = [
        (500, "EUR", "lamps"),
        (1500, "EUR", "lamps"),
        (2500, "EUR", "bikes"),
        (1000, "USD", "bikes"),
    ]
    for n, (amount, currency, category) in enumerate(prices):
        listing = make_listing(
            key,
            subject=f"p{n}",
            created=NOW + n,
            price=records.Price(amount=amount, currency=currency),
            category=category,
        )
        store.apply(listing, NOW)

    def subjects(**filters: object) -> list[str]:
        return [r.subject for r in store.listings(**filters).items]  # type: ignore[arg-type]

    assert subjects(currency="EUR", min_price=1000) == ["p2", "p1"]
    assert subjects(currency="EUR", max_price=1500) == ["p1", "p0"]
    assert subjects(currency="EUR", min_price=600, max_price=2000) == ["p1"]
    assert subjects(currency="USD") == ["p3"]
    assert subjects(currency="EUR", category="bikes") == ["p2"]
    with pytest.raises(StorageError, match="currency"):
        store.listings(min_price=1)
    assert store.categories(10) == [("bikes", 2), ("lamps", 2)]
    assert store.categories(1) == [("bikes", 2)]


def test_a_schema_4_database_gets_its_listing_prices(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    """A database written before prices had columns: migrated, then filled in at open."""
    path = tmp_path / "zion.db"
    old = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:4]:
        for statement in _statements(script):
            old.execute(statement)
    old.execute("PRAGMA user_version = 4")
    listing = make_listing(key, price=records.Price(amount=777, currency="CHF"))
    old.execute(
        "INSERT INTO records (id, author, subject, kind, family, seq, created, expires, block,"
        " received) VALUES (?, ?, ?, 'listing', 'listing', 1, ?, ?, ?, ?)",
        (listing.id, listing.author, listing.subject, listing.created, listing.expires,
         listing.block, NOW),
    )  # fmt: skip
    old.execute(
        "INSERT INTO listings (record_id, author, subject, title, description, tags, category,"
        " created) VALUES (?, ?, ?, 'Red bike', '', '', 'bikes', ?)",
        (listing.id, listing.author, listing.subject, listing.created),
    )
    old.close()
    store = RecordStore(Database(path))
    assert len(store.listings(currency="CHF", min_price=777, max_price=777).items) == 1
    assert store.listings(currency="CHF", min_price=778).items == []


def test_a_listing_that_no_longer_decodes_does_not_stop_the_store(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    db = Database(tmp_path / "zion.db")
    store = RecordStore(db)
    store.apply(make_listing(key, subject="good"), NOW)
    store.apply(make_listing(key, subject="bad"), NOW)
    db.conn.execute("UPDATE listings SET currency = NULL, price_amount = NULL")
    db.conn.execute(
        "UPDATE records SET block = x'00' WHERE id ="
        " (SELECT record_id FROM listings WHERE subject = 'bad')"
    )
    RecordStore(db)  # starts anyway
    rows = dict(db.conn.execute("SELECT subject, currency FROM listings").fetchall())
    assert rows == {"good": "EUR", "bad": ""}
    unpriced = "SELECT count(*) FROM listings WHERE currency IS NULL"
    assert db.conn.execute(unpriced).fetchone() == (0,)


def test_fts_query_quotes_every_word() -> None:
    assert fts_query("red bike") == '"red"* "bike"*'
    assert fts_query("*** OR NEAR(") == '"OR"* "NEAR"*'
    assert fts_query("  ") is None


def test_expiry_removes_and_logs(store: RecordStore, key: Ed25519PrivateKey) -> None:
    record = make_listing(key)
    store.apply(record, NOW)
    assert store.expire(NOW + DAY) == []
    assert store.expire(NOW + 31 * DAY) == [sync_item(record)]
    assert store.count() == 0
    assert [e.type for e in store.events_after(0)] == ["listing.stored", "listing.expired"]


def test_event_log_is_ordered_and_durable(
    tmp_path: Path, listing_factory: Callable[..., records.Record]
) -> None:
    path = tmp_path / "zion.db"
    store = RecordStore(Database(path))
    for n in range(5):
        store.apply(listing_factory(subject=f"s{n}"), NOW)
    events = store.events_after(0)
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert store.events_after(events[2].id) == events[3:]
    reopened = RecordStore(Database(path))
    assert reopened.last_event_id() == events[-1].id
    assert len(reopened.sync_items()) == 5


def test_messages_by_channel(store: RecordStore, key: Ed25519PrivateKey) -> None:
    for n, channel in enumerate(["general", "bikes", "general"]):
        store.apply(
            records.sign_record(
                key,
                kind="message",
                subject=f"m{n}",
                seq=1,
                created=NOW + n,
                body=records.MessageBody(channel=channel, text=f"hello {n}"),
            ),
            NOW,
        )
    page = store.messages("general")
    assert [r.body.text for r in page.items] == ["hello 2", "hello 0"]  # type: ignore[union-attr]


def test_batch_is_one_transaction(store: RecordStore, key: Ed25519PrivateKey) -> None:
    batch = [make_listing(key, subject=f"b{n}") for n in range(50)]
    results = store.apply_many(batch + batch[:1], NOW)
    assert [r.outcome for r in results].count(Outcome.STORED) == 50
    assert results[-1].outcome is Outcome.DUPLICATE


def test_versions_in_one_batch_and_full_text_stay_consistent(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    db = Database(tmp_path / "zion.db")
    store = RecordStore(db)
    v1 = make_listing(key, seq=1, title="Walnut cabinet")
    v2 = make_listing(key, seq=2, created=NOW + 1, title="Cherry cabinet")
    v3 = make_listing(key, seq=3, created=NOW + 2, title="Maple cabinet")
    other = make_listing(key, subject="other", title="Walnut stool")
    outcomes = [a.outcome for a in store.apply_many([v2, other, v1, v2], NOW)]
    assert outcomes == [Outcome.STORED, Outcome.STORED, Outcome.STALE, Outcome.DUPLICATE]
    assert [r.subject for r in store.listings(query="cherry").items] == ["bike1"]
    assert [r.subject for r in store.listings(query="walnut").items] == ["other"]
    store.apply_many([v3], NOW)
    assert store.listings(query="cherry").items == []
    assert [r.id for r in store.listings(query="maple").items] == [v3.id]
    store.expire(NOW + 365 * DAY)
    assert store.listings(query="maple").items == []
    # FTS5's own check that the index matches its content table.
    db.conn.execute("INSERT INTO listings_fts (listings_fts) VALUES ('integrity-check')")
