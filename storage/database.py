"""Opening the node's SQLite database: WAL mode, durable commits, versioned migrations."""

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from zion.storage.errors import StorageError

#: Each entry upgrades the schema by one version; PRAGMA user_version is the applied count.
#: Never edit an entry that has shipped: append a new one.
MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: records, the listing and message indexes, full-text search, the event log.
    """
    CREATE TABLE records (
        id TEXT PRIMARY KEY,
        author TEXT NOT NULL,
        subject TEXT NOT NULL,
        kind TEXT NOT NULL,
        family TEXT NOT NULL,
        seq INTEGER NOT NULL,
        created INTEGER NOT NULL,
        expires INTEGER,
        block BLOB NOT NULL,
        received INTEGER NOT NULL,
        UNIQUE (author, subject)
    );
    CREATE INDEX records_by_created ON records (created, id);
    CREATE INDEX records_by_expiry ON records (expires) WHERE expires IS NOT NULL;

    CREATE TABLE listings (
        rowid INTEGER PRIMARY KEY AUTOINCREMENT,
        record_id TEXT NOT NULL UNIQUE REFERENCES records (id) ON DELETE CASCADE,
        author TEXT NOT NULL,
        subject TEXT NOT NULL,
        title TEXT NOT NULL,
        description TEXT NOT NULL,
        tags TEXT NOT NULL,
        category TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE INDEX listings_by_created ON listings (created, record_id);
    CREATE INDEX listings_by_category ON listings (category, created);
    CREATE INDEX listings_by_author ON listings (author, created);
    CREATE VIRTUAL TABLE listings_fts USING fts5 (
        title, description, tags, content = 'listings', content_rowid = 'rowid'
    );
    CREATE TRIGGER listings_fts_delete AFTER DELETE ON listings BEGIN
        INSERT INTO listings_fts (listings_fts, rowid, title, description, tags)
        VALUES ('delete', old.rowid, old.title, old.description, old.tags);
    END;

    CREATE TABLE messages (
        record_id TEXT PRIMARY KEY REFERENCES records (id) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        author TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE INDEX messages_by_channel ON messages (channel, created, record_id);

    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        type TEXT NOT NULL,
        data TEXT NOT NULL
    );
    """,
    # 2: content pins. A root may be pinned by several owners ("user",
    # "listing:<author>/<subject>"); its blocks stay while any pin remains.
    """
    CREATE TABLE pins (
        cid TEXT NOT NULL,
        owner TEXT NOT NULL,
        created INTEGER NOT NULL,
        PRIMARY KEY (cid, owner)
    );
    CREATE INDEX pins_by_owner ON pins (owner);
    """,
    # 3: ballots this node relays on-chain, so a restart never submits one twice.
    """
    CREATE TABLE relayed_ballots (
        record_id TEXT PRIMARY KEY,
        governor TEXT NOT NULL,
        proposal_id TEXT NOT NULL,
        voter TEXT NOT NULL,
        nonce TEXT NOT NULL,
        state TEXT NOT NULL,
        tx_hash TEXT,
        detail TEXT,
        updated INTEGER NOT NULL
    );
    CREATE INDEX relayed_by_state ON relayed_ballots (state);
    """,
    # 4: the DAO as the chain watcher has seen it (confirmed blocks only).
    """
    CREATE TABLE dao_proposals (
        governor TEXT NOT NULL,
        proposal_id TEXT NOT NULL,
        proposer TEXT NOT NULL,
        description TEXT NOT NULL,
        snapshot INTEGER NOT NULL,
        deadline INTEGER NOT NULL,
        state TEXT NOT NULL,
        created_block INTEGER NOT NULL,
        PRIMARY KEY (governor, proposal_id)
    );
    CREATE TABLE dao_votes (
        governor TEXT NOT NULL,
        proposal_id TEXT NOT NULL,
        voter TEXT NOT NULL,
        support INTEGER NOT NULL,
        weight TEXT NOT NULL,
        block INTEGER NOT NULL,
        PRIMARY KEY (governor, proposal_id, voter)
    );
    CREATE TABLE dao_cursor (
        governor TEXT PRIMARY KEY,
        block INTEGER NOT NULL,
        block_hash TEXT NOT NULL
    );
    """,
    # 5: listing prices, for price filters. Rows from before are NULL until RecordStore
    # fills them in from the stored records (SQL cannot read the signed record blocks).
    """
    ALTER TABLE listings ADD COLUMN currency TEXT;
    ALTER TABLE listings ADD COLUMN price_amount INTEGER;
    CREATE INDEX listings_by_price ON listings (currency, price_amount);
    """,
    # 6: finding the listings whose price is still to fill in, without a scan at each start.
    """
    CREATE INDEX listings_unpriced ON listings (record_id) WHERE currency IS NULL;
    """,
    # 7: direct messages, as this member sent and received them (opened: plaintext; the
    # node home is 0700), and the sealed envelope of each outgoing one until it is delivered.
    """
    CREATE TABLE dm_messages (
        id BLOB PRIMARY KEY,
        conversation BLOB NOT NULL,
        peer TEXT NOT NULL,
        outgoing INTEGER NOT NULL,
        sent INTEGER NOT NULL,
        stored INTEGER NOT NULL,
        text TEXT NOT NULL,
        listing TEXT,
        status TEXT NOT NULL,
        detail TEXT,
        envelope BLOB,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER
    );
    CREATE INDEX dm_by_conversation ON dm_messages (conversation, sent, id);
    CREATE INDEX dm_outbox ON dm_messages (next_attempt) WHERE envelope IS NOT NULL;
    """,
    # 8: sealed messages this node holds for others, as a mailbox (it cannot open them).
    """
    CREATE TABLE dm_mailbox (
        hash BLOB PRIMARY KEY,
        recipient TEXT NOT NULL,
        envelope BLOB NOT NULL,
        stored INTEGER NOT NULL
    );
    CREATE INDEX dm_mailbox_by_recipient ON dm_mailbox (recipient, stored);
    CREATE INDEX dm_mailbox_by_age ON dm_mailbox (stored);
    """,
    # 9: counting a sender's unread messages (each new one from them checks it).
    """
    CREATE INDEX dm_unread_by_peer ON dm_messages (peer) WHERE outgoing = 0 AND status = 'unread';
    """,
    # 10: bridges. Requests each member made of each service per UTC day (quotas survive a
    # restart); the PaymentIntents a Stripe bridge created and the webhook events it handled
    # (replays are refused); and, on a buyer's node, the payments it started.
    """
    CREATE TABLE bridge_usage (
        service TEXT NOT NULL,
        peer TEXT NOT NULL,
        day INTEGER NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (service, peer, day)
    );
    CREATE TABLE stripe_payments (
        payment_intent TEXT PRIMARY KEY,
        listing TEXT NOT NULL,
        listing_subject TEXT NOT NULL,
        buyer TEXT NOT NULL,
        seller TEXT NOT NULL,
        amount INTEGER NOT NULL,
        currency TEXT NOT NULL,
        created INTEGER NOT NULL,
        status TEXT NOT NULL,
        refunded INTEGER NOT NULL DEFAULT 0,
        receipt_seq INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE stripe_events (
        id TEXT PRIMARY KEY,
        signed_at INTEGER NOT NULL,
        received INTEGER NOT NULL
    );
    CREATE INDEX stripe_events_by_age ON stripe_events (received);
    CREATE TABLE orders (
        payment_intent TEXT PRIMARY KEY,
        listing TEXT NOT NULL,
        listing_subject TEXT NOT NULL,
        bridge TEXT NOT NULL,
        seller TEXT NOT NULL,
        amount INTEGER NOT NULL,
        currency TEXT NOT NULL,
        client_secret TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE INDEX orders_by_created ON orders (created);
    CREATE INDEX records_by_kind ON records (kind, created);
    """,
)


def open_database(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the database at ``path``."""
    try:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk before the API answers 2xx, whatever happens next.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 5000")
        migrate(conn)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open database {path}: {exc}") from exc
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations not yet applied; return the schema version."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise StorageError(
            f"database schema version {version} is newer than this program "
            f"({len(MIGRATIONS)}): upgrade zion"
        )
    for number in range(version, len(MIGRATIONS)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[number]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


class Database:
    """A writer connection and a reader connection to one database file.

    WAL lets the reader run while the writer commits, so a large sync batch being written never
    stalls a page read by the gateway. Each connection is used by one thread at a time (its lock).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = open_database(path)
        self.lock = threading.RLock()
        try:
            self.reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self.reader.execute("PRAGMA busy_timeout = 5000")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database {path}: {exc}") from exc
        self.read_lock = threading.Lock()

    @contextmanager
    def transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction on the writer (BEGIN IMMEDIATE ... COMMIT, rolled back on any
        error); SQLite's errors become StorageError("cannot <what>: ...")."""
        conn = self.conn
        with self.lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StorageError(f"cannot {what}: {exc}") from exc
                raise

    def read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Rows from the reader connection (it does not wait for the writer)."""
        with self.read_lock:
            return self.reader.execute(sql, params).fetchall()

    def close(self) -> None:
        with self.read_lock:
            self.reader.close()
        with self.lock:
            self.conn.close()
