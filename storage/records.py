"""The record store: the latest version of every (author, subject), indexes and events.

Rules kept here because they depend on what is already stored:
- the same record again is a duplicate; a lower or equal ``seq`` than the kept one is stale;
- a higher ``seq`` replaces the kept record (a tombstone too, and the tombstone is kept, so an
  old version arriving late cannot bring the thing back);
- every change appends one row to the event log in the same transaction.
"""

from __future__ import annotations

import enum
import logging
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from zion.protocols import cid
from zion.protocols.errors import ProtocolError
from zion.protocols.records import ListingBody, MessageBody, Record, decode_record
from zion.protocols.sync import Item
from zion.storage.database import Database
from zion.storage.errors import StorageError

log = logging.getLogger(__name__)

MAX_PAGE: Final = 200
#: Words of a search query that reach FTS5; the rest are dropped.
MAX_QUERY_TERMS: Final = 16


class Outcome(enum.Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class Applied:
    outcome: Outcome
    record: Record
    #: Sync item of the record this one replaced, if any.
    replaced: Item | None = None

    @property
    def stored(self) -> bool:
        return self.outcome is Outcome.STORED


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    at: int
    type: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Record]
    next: str | None


def sync_item(record: Record) -> Item:
    return record.created, cid.record_id_to_bytes(record.id)


def event_for(record: Record) -> tuple[str, dict[str, Any]]:
    """The event-log entry for a newly stored record."""
    if record.kind == "tombstone":
        return f"{record.family}.deleted", {
            "author": record.author,
            "subject": record.subject,
            "id": record.id,
        }
    return f"{record.kind}.stored", record.to_json()


class RecordStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._fill_listing_prices()

    def _fill_listing_prices(self) -> None:
        """Listings stored before migration 5 get their price columns from their records. A
        record that no longer decodes gets an empty currency, which no filter matches (and
        which is not looked at again)."""
        conn = self._db.conn
        with self._db.lock:
            try:
                rows = conn.execute(
                    "SELECT l.record_id, r.block FROM listings l"
                    " JOIN records r ON r.id = l.record_id WHERE l.currency IS NULL"
                ).fetchall()
                if not rows:
                    return
                updates: list[tuple[str, int | None, str]] = []
                for record_id, block in rows:
                    try:
                        body = decode_record(block).body
                    except ProtocolError as exc:
                        log.warning("listing %s does not decode (%s): no price", record_id, exc)
                        updates.append(("", None, record_id))
                        continue
                    assert isinstance(body, ListingBody)
                    updates.append((body.price.currency, body.price.amount, record_id))
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "UPDATE listings SET currency = ?, price_amount = ? WHERE record_id = ?",
                    updates,
                )
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StorageError(f"cannot fill in listing prices: {exc}") from exc

    # --- writes --------------------------------------------------------------------------

    def apply(self, record: Record, now_ms: int, *, durable: bool = True) -> Applied:
        return self.apply_many([record], now_ms, durable=durable)[0]

    def apply_many(
        self, records: Iterable[Record], now_ms: int, *, durable: bool = True
    ) -> list[Applied]:
        """Store what is new among ``records`` in one transaction.

        ``durable``: the commit is on disk when this returns (fsync). Records from peers pass
        False: losing the last ones to a power cut costs nothing, sync brings them back, and
        an fsync per gossip message is the most expensive part of storing it. Either way the
        transaction is atomic and survives the process being killed.
        """
        conn = self._db.conn
        batch = list(records)
        results: list[Applied] = []
        with self._db.lock:
            try:
                conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
                conn.execute("BEGIN IMMEDIATE")
                (indexed,) = conn.execute("SELECT coalesce(max(rowid), 0) FROM listings").fetchone()
                newest = _newest_per_subject(batch)
                for record in batch:
                    best = newest[(record.author, record.subject)]
                    if best is record:
                        results.append(self._apply_one(conn, record, now_ms))
                    else:
                        same = best.id == record.id
                        results.append(
                            Applied(Outcome.DUPLICATE if same else Outcome.STALE, record)
                        )
                # Full-text rows for the whole batch in one statement: much cheaper than a
                # trigger per row. Safe because a listing row added in this batch is never
                # deleted in it (one record per subject per batch, above), and AUTOINCREMENT
                # never reuses a rowid, so "rowid > indexed" is exactly this batch's rows.
                conn.execute(
                    "INSERT INTO listings_fts (rowid, title, description, tags)"
                    " SELECT rowid, title, description, tags FROM listings WHERE rowid > ?",
                    (indexed,),
                )
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StorageError(f"cannot store records: {exc}") from exc
                raise
        return results

    def _apply_one(self, conn: sqlite3.Connection, record: Record, now_ms: int) -> Applied:
        row = conn.execute(
            "SELECT id, seq, created FROM records WHERE author = ? AND subject = ?",
            (record.author, record.subject),
        ).fetchone()
        replaced: Item | None = None
        if row is not None:
            old_id, old_seq, old_created = row
            if old_id == record.id:
                return Applied(Outcome.DUPLICATE, record)
            if old_seq >= record.seq:
                return Applied(Outcome.STALE, record)
            conn.execute("DELETE FROM records WHERE id = ?", (old_id,))
            replaced = (old_created, cid.record_id_to_bytes(old_id))
        conn.execute(
            "INSERT INTO records (id, author, subject, kind, family, seq, created, expires,"
            " block, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.id,
                record.author,
                record.subject,
                record.kind,
                record.family,
                record.seq,
                record.created,
                record.expires,
                record.block,
                now_ms,
            ),
        )
        body = record.body
        if isinstance(body, ListingBody):
            conn.execute(
                "INSERT INTO listings (record_id, author, subject, title, description, tags,"
                " category, created, currency, price_amount) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.author,
                    record.subject,
                    body.title,
                    body.description,
                    " ".join(body.tags),
                    body.category,
                    record.created,
                    body.price.currency,
                    body.price.amount,
                ),
            )
        elif isinstance(body, MessageBody):
            conn.execute(
                "INSERT INTO messages (record_id, channel, author, created) VALUES (?, ?, ?, ?)",
                (record.id, body.channel, record.author, record.created),
            )
        event_type, data = event_for(record)
        self._append_event(conn, now_ms, event_type, data)
        return Applied(Outcome.STORED, record, replaced)

    @staticmethod
    def _append_event(
        conn: sqlite3.Connection, now_ms: int, event_type: str, data: dict[str, Any]
    ) -> None:
        conn.execute(
            "INSERT INTO events (at, type, data) VALUES (?, ?, ?)",
            (now_ms, event_type, msgspec.json.encode(data)),
        )

    def expire(self, now_ms: int) -> list[Item]:
        """Drop records whose expiry has passed; return their sync items."""
        conn = self._db.conn
        with self._db.lock:
            rows = conn.execute(
                "SELECT id, created, family, author, subject FROM records"
                " WHERE expires IS NOT NULL AND expires <= ?",
                (now_ms,),
            ).fetchall()
            if not rows:
                return []
            conn.execute("BEGIN IMMEDIATE")
            try:
                for record_id, _, family, author, subject in rows:
                    conn.execute("DELETE FROM records WHERE id = ?", (record_id,))
                    self._append_event(
                        conn,
                        now_ms,
                        f"{family}.expired",
                        {"id": record_id, "author": author, "subject": subject},
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return [(created, cid.record_id_to_bytes(rid)) for rid, created, *_ in rows]

    # --- reads ---------------------------------------------------------------------------

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._db.read_lock:
            return self._db.reader.execute(sql, params).fetchall()

    def get(self, record_id: str) -> Record | None:
        rows = self._query("SELECT block FROM records WHERE id = ?", (record_id,))
        return decode_record(rows[0][0]) if rows else None

    def head(self, author: str, subject: str) -> Record | None:
        rows = self._query(
            "SELECT block FROM records WHERE author = ? AND subject = ?", (author, subject)
        )
        return decode_record(rows[0][0]) if rows else None

    def of_kind(self, kind: str, limit: int = 10_000) -> list[Record]:
        """The newest records of one kind (ballots are few: the preview tally reads them all)."""
        rows = self._query(
            "SELECT block FROM records WHERE kind = ? ORDER BY created DESC LIMIT ?",
            (kind, limit),
        )
        return [decode_record(row[0]) for row in rows]

    def of_kind_by(self, kind: str, author: str, limit: int = 10_000) -> list[Record]:
        """One author's newest records of one kind (a bridge's receipts)."""
        rows = self._query(
            "SELECT block FROM records WHERE author = ? AND kind = ? ORDER BY created DESC LIMIT ?",
            (author, kind, limit),
        )
        return [decode_record(row[0]) for row in rows]

    def listing(self, subject: str, prefer_author: str) -> Record | None:
        """The listing with this subject: ``prefer_author``'s if there is one (subjects are
        chosen by authors, so two authors could pick the same), else the newest."""
        rows = self._query(
            "SELECT r.block FROM listings l JOIN records r ON r.id = l.record_id"
            " WHERE l.subject = ? ORDER BY l.author = ? DESC, l.created DESC LIMIT 1",
            (subject, prefer_author),
        )
        return decode_record(rows[0][0]) if rows else None

    def blocks(self, ids: list[str]) -> list[bytes]:
        found: list[bytes] = []
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            found += [
                row[0]
                for row in self._query(
                    f"SELECT block FROM records WHERE id IN ({marks})",  # noqa: S608
                    tuple(part),
                )
            ]
        return found

    def known(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` are stored (MAX_BATCH_RECORDS at most: one query)."""
        marks = ",".join("?" * len(ids))
        rows = self._query(f"SELECT id FROM records WHERE id IN ({marks})", tuple(ids))  # noqa: S608
        return {row[0] for row in rows}

    def sync_items(self) -> list[Item]:
        return [
            (created, cid.record_id_to_bytes(record_id))
            for created, record_id in self._query("SELECT created, id FROM records")
        ]

    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM records")[0][0])

    def count_listings(self) -> int:
        return int(self._query("SELECT count(*) FROM listings")[0][0])

    def categories(self, limit: int) -> list[tuple[str, int]]:
        """The most used listing categories with their listing counts."""
        rows = self._query(
            "SELECT category, count(*) AS n FROM listings GROUP BY category"
            " ORDER BY n DESC, category LIMIT ?",
            (limit,),
        )
        return [(str(name), int(count)) for name, count in rows]

    def count_messages(self) -> int:
        return int(self._query("SELECT count(*) FROM messages")[0][0])

    def listings(
        self,
        *,
        query: str | None = None,
        category: str | None = None,
        author: str | None = None,
        currency: str | None = None,
        min_price: int | None = None,
        max_price: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Listings newest first, filtered; ``cursor`` continues a previous page. Prices are
        amounts in the currency's smallest unit; they compare only within ``currency``."""
        if (min_price is not None or max_price is not None) and not currency:
            raise StorageError("a price filter needs a currency")
        limit = max(1, min(limit, MAX_PAGE))
        where: list[str] = []
        params: list[Any] = []
        if query:
            match = fts_query(query)
            if match is None:
                return Page([], None)
            where.append("l.rowid IN (SELECT rowid FROM listings_fts WHERE listings_fts MATCH ?)")
            params.append(match)
        if category:
            where.append("l.category = ?")
            params.append(category)
        if author:
            where.append("l.author = ?")
            params.append(author)
        if currency:
            where.append("l.currency = ?")
            params.append(currency)
        if min_price is not None:
            where.append("l.price_amount >= ?")
            params.append(min_price)
        if max_price is not None:
            where.append("l.price_amount <= ?")
            params.append(max_price)
        if cursor:
            created, record_id = parse_cursor(cursor)
            where.append("(l.created, l.record_id) < (?, ?)")
            params += [created, record_id]
        sql = (
            "SELECT r.block, l.created, l.record_id FROM listings l"
            " JOIN records r ON r.id = l.record_id"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY l.created DESC, l.record_id DESC LIMIT ?"
        params.append(limit + 1)
        rows = self._query(sql, tuple(params))
        return _page(rows, limit)

    def messages(self, channel: str, *, limit: int = 50, cursor: str | None = None) -> Page:
        """Messages of a channel, newest first."""
        limit = max(1, min(limit, MAX_PAGE))
        sql = (
            "SELECT r.block, m.created, m.record_id FROM messages m"
            " JOIN records r ON r.id = m.record_id WHERE m.channel = ?"
        )
        params: list[Any] = [channel]
        if cursor:
            created, record_id = parse_cursor(cursor)
            sql += " AND (m.created, m.record_id) < (?, ?)"
            params += [created, record_id]
        sql += " ORDER BY m.created DESC, m.record_id DESC LIMIT ?"
        params.append(limit + 1)
        return _page(self._query(sql, tuple(params)), limit)

    def events_after(self, after: int, limit: int = 100) -> list[Event]:
        rows = self._query(
            "SELECT id, at, type, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit),
        )
        return [Event(row[0], row[1], row[2], msgspec.json.decode(row[3])) for row in rows]

    def last_event_id(self) -> int:
        return int(self._query("SELECT coalesce(max(id), 0) FROM events")[0][0])


def _newest_per_subject(batch: list[Record]) -> dict[tuple[str, str], Record]:
    newest: dict[tuple[str, str], Record] = {}
    for record in batch:
        key = (record.author, record.subject)
        if key not in newest or record.seq > newest[key].seq:
            newest[key] = record
    return newest


def _page(rows: list[Any], limit: int) -> Page:
    items = [decode_record(row[0]) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = f"{last[1]}.{last[2]}"
    return Page(items, next_cursor)


def parse_cursor(cursor: str) -> tuple[int, str]:
    created, _, record_id = cursor.partition(".")
    try:
        return int(created), cid.cid_bytes_to_str(cid.record_id_to_bytes(record_id))
    except ValueError as exc:
        raise StorageError(f"bad cursor {cursor[:80]!r}") from exc


_WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str) -> str | None:
    """Turn free text into a safe FTS5 query: every word must match, as a prefix."""
    words = _WORD.findall(text)[:MAX_QUERY_TERMS]
    if not words:
        return None
    return " ".join(f'"{word}"*' for word in words)
