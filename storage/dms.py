"""Direct messages as this member sent and received them, with each outgoing message's state.

Outgoing messages keep their sealed envelope until they are delivered (or fail), so a restart
loses nothing and resends the same bytes (the recipient drops the duplicate by message ID).
Every change appends an event (``dm.received``, ``dm.status``) to the event log in the same
transaction, for the gateway's live stream. Events carry no message text.
"""

from __future__ import annotations

import enum
import hashlib
import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from zion.protocols import dm
from zion.storage.database import Database
from zion.storage.errors import StorageError

MAX_PAGE: Final = 200
MAX_CONVERSATIONS: Final = 500


class Status(enum.StrEnum):
    """Outgoing: sent (sealed, on its way) → stored (a mailbox holds it) → delivered → read,
    or failed (with the reason). Incoming: unread → read."""

    SENT = "sent"
    #: A mailbox holds it for the recipient (their node was not reachable).
    STORED = "stored"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNREAD = "unread"


@dataclass(frozen=True)
class DirectMessage:
    id: bytes
    conversation: bytes
    peer: str
    outgoing: bool
    sent: int
    stored: int
    text: str
    listing: str | None
    status: str
    detail: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id.hex(),
            "conversation": self.conversation.hex(),
            "peer": self.peer,
            "outgoing": self.outgoing,
            "sent": self.sent,
            "stored": self.stored,
            "text": self.text,
            "listing": self.listing,
            "status": self.status,
            "detail": self.detail,
        }


class InboxFull(StorageError):
    """The sender has too many unread messages here; they may try again later."""


@dataclass(frozen=True)
class MailboxLimits:
    per_recipient: int
    max_age_ms: int
    max_bytes: int


@dataclass(frozen=True)
class Pending:
    """An outgoing message still to deliver."""

    id: bytes
    peer: str
    envelope: bytes
    attempts: int
    sent: int


_SELECT: Final = (
    "SELECT id, conversation, peer, outgoing, sent, stored, text, listing, status, detail"
    " FROM dm_messages"
)


class DmStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- writes --------------------------------------------------------------------------

    def add_outgoing(
        self, message: dm.Message, envelope: bytes, now_ms: int, first_retry_ms: int
    ) -> DirectMessage:
        """``first_retry_ms``: when the outbox may first try it (the caller tries now)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO dm_messages (id, conversation, peer, outgoing, sent, stored, text,"
                " listing, status, envelope, next_attempt)"
                " VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)",
                (message.id, message.conversation, message.recipient, message.sent, now_ms,
                 message.text, message.listing, Status.SENT, envelope, first_retry_ms),
            )  # fmt: skip
            self._event(conn, now_ms, "dm.status", message.id, message.conversation, Status.SENT)
        return self._one(message.id)

    def add_incoming(self, message: dm.Message, now_ms: int, max_unread_per_sender: int) -> bool:
        """Store a message sent to us; False if it was here already (a duplicate). Raises
        InboxFull when its sender already has ``max_unread_per_sender`` unread here."""
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM dm_messages WHERE id = ?", (message.id,)).fetchone():
                return False
            (unread,) = conn.execute(
                "SELECT count(*) FROM dm_messages WHERE peer = ? AND outgoing = 0"
                " AND status = 'unread'",
                (message.sender,),
            ).fetchone()
            if unread >= max_unread_per_sender:
                raise InboxFull(f"{unread} unread messages from this sender")
            cursor = conn.execute(
                "INSERT OR IGNORE INTO dm_messages (id, conversation, peer, outgoing, sent,"
                " stored, text, listing, status) VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?)",
                (message.id, message.conversation, message.sender, message.sent, now_ms,
                 message.text, message.listing, Status.UNREAD),
            )  # fmt: skip
            if cursor.rowcount == 0:
                return False
            self._event(conn, now_ms, "dm.received", message.id, message.conversation, "unread")
        return True

    def delivered(self, message_id: bytes, now_ms: int) -> None:
        self._settle(message_id, Status.DELIVERED, None, now_ms)

    def failed(self, message_id: bytes, reason: str, now_ms: int) -> None:
        self._settle(message_id, Status.FAILED, reason, now_ms)

    def retry_later(self, message_id: bytes, at_ms: int, reason: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE dm_messages SET attempts = attempts + 1, next_attempt = ?, detail = ?"
                " WHERE id = ? AND envelope IS NOT NULL",
                (at_ms, reason, message_id),
            )

    def stored_by_mailbox(self, message_id: bytes, now_ms: int) -> None:
        """A mailbox took it; the outbox keeps trying the recipient directly meanwhile."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT conversation FROM dm_messages WHERE id = ? AND status = ?",
                (message_id, Status.SENT),
            ).fetchone()
            if row is None:
                return
            conn.execute(
                "UPDATE dm_messages SET status = ? WHERE id = ?", (Status.STORED, message_id)
            )
            self._event(conn, now_ms, "dm.status", message_id, row[0], Status.STORED)

    # --- the mailbox (messages held for others) -----------------------------------------

    def mailbox_put(
        self, recipient: str, envelope: bytes, now_ms: int, limits: MailboxLimits
    ) -> bool:
        """Hold ``envelope`` for ``recipient``; False if it is here already. The recipient's
        oldest messages beyond the per-recipient bound, and anything past the age or total
        size bounds, make room."""
        digest = hashlib.sha256(envelope).digest()
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO dm_mailbox (hash, recipient, envelope, stored)"
                " VALUES (?, ?, ?, ?)",
                (digest, recipient, envelope, now_ms),
            )
            if cursor.rowcount == 0:
                return False
            conn.execute(
                "DELETE FROM dm_mailbox WHERE recipient = ? AND hash NOT IN (SELECT hash FROM"
                " dm_mailbox WHERE recipient = ? ORDER BY stored DESC, hash LIMIT ?)",
                (recipient, recipient, limits.per_recipient),
            )
            conn.execute("DELETE FROM dm_mailbox WHERE stored < ?", (now_ms - limits.max_age_ms,))
            (total,) = conn.execute(
                "SELECT coalesce(sum(length(envelope)), 0) FROM dm_mailbox"
            ).fetchone()
            while total > limits.max_bytes:
                oldest = conn.execute(
                    "SELECT hash, length(envelope) FROM dm_mailbox ORDER BY stored, hash LIMIT 1"
                ).fetchone()
                conn.execute("DELETE FROM dm_mailbox WHERE hash = ?", (oldest[0],))
                total -= oldest[1]
        return True

    def mailbox_for(
        self, recipient: str, limit: int, not_before_ms: int = 0
    ) -> list[tuple[bytes, bytes]]:
        """(hash, envelope) of what is held for ``recipient`` (stored at or after
        ``not_before_ms``: older ones are expired), oldest first."""
        return [
            (digest, envelope)
            for digest, envelope in self._read(
                "SELECT hash, envelope FROM dm_mailbox WHERE recipient = ? AND stored >= ?"
                " ORDER BY stored, hash LIMIT ?",
                (recipient, not_before_ms, limit),
            )
        ]

    def mailbox_drop(self, recipient: str, hashes: list[bytes]) -> int:
        """The recipient has them: forget them (only ones held for that recipient)."""
        with self._write() as conn:
            dropped = 0
            for digest in hashes:
                dropped += conn.execute(
                    "DELETE FROM dm_mailbox WHERE hash = ? AND recipient = ?", (digest, recipient)
                ).rowcount
        return dropped

    def mailbox_count(self) -> int:
        return int(self._read("SELECT count(*) FROM dm_mailbox", ())[0][0])

    def due_now(self, peer: str, now_ms: int) -> None:
        """Messages waiting for ``peer`` are due at once (it just connected)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE dm_messages SET next_attempt = ? WHERE peer = ? AND envelope IS NOT NULL",
                (now_ms, peer),
            )

    def receipt(self, peer: str, ids: list[bytes], read: bool, now_ms: int) -> int:
        """``peer`` says it has (or has read) these messages we sent it; how many changed.
        Messages sent to anyone else are not touched."""
        changed = 0
        with self._write() as conn:
            for message_id in ids:
                row = conn.execute(
                    "SELECT conversation, status FROM dm_messages"
                    " WHERE id = ? AND peer = ? AND outgoing = 1",
                    (message_id, peer),
                ).fetchone()
                if row is None or row[1] in (Status.READ, Status.FAILED):
                    continue
                status = Status.READ if read else Status.DELIVERED
                if row[1] == status:
                    continue
                conn.execute(
                    "UPDATE dm_messages SET status = ?, detail = NULL, envelope = NULL,"
                    " next_attempt = NULL WHERE id = ?",
                    (status, message_id),
                )
                self._event(conn, now_ms, "dm.status", message_id, row[0], status)
                changed += 1
        return changed

    def mark_read(self, conversation: bytes, now_ms: int) -> list[tuple[bytes, str]]:
        """Incoming messages of ``conversation`` read: (ID, sender) of those that were not."""
        with self._write() as conn:
            rows = conn.execute(
                "SELECT id, peer FROM dm_messages WHERE conversation = ? AND outgoing = 0"
                " AND status = ?",
                (conversation, Status.UNREAD),
            ).fetchall()
            for message_id, _ in rows:
                conn.execute(
                    "UPDATE dm_messages SET status = ? WHERE id = ?", (Status.READ, message_id)
                )
                self._event(conn, now_ms, "dm.status", message_id, conversation, Status.READ)
        return [(message_id, peer) for message_id, peer in rows]

    def _settle(self, message_id: bytes, status: Status, detail: str | None, now_ms: int) -> None:
        with self._write() as conn:
            row = conn.execute(
                "SELECT conversation FROM dm_messages WHERE id = ? AND envelope IS NOT NULL",
                (message_id,),
            ).fetchone()
            if row is None:
                return  # settled already
            conn.execute(
                "UPDATE dm_messages SET status = ?, detail = ?, envelope = NULL,"
                " next_attempt = NULL WHERE id = ?",
                (status, detail, message_id),
            )
            self._event(conn, now_ms, "dm.status", message_id, row[0], status)

    # --- reads ---------------------------------------------------------------------------

    def due(self, now_ms: int, limit: int) -> list[Pending]:
        rows = self._read(
            "SELECT id, peer, envelope, attempts, sent FROM dm_messages"
            " WHERE envelope IS NOT NULL AND next_attempt <= ? ORDER BY next_attempt LIMIT ?",
            (now_ms, limit),
        )
        return [Pending(*row) for row in rows]

    def get(self, message_id: bytes) -> DirectMessage | None:
        rows = self._read(_SELECT + " WHERE id = ?", (message_id,))
        return _message(rows[0]) if rows else None

    def messages(self, conversation: bytes, limit: int) -> list[DirectMessage]:
        """The newest ``limit`` messages of a conversation, oldest first."""
        rows = self._read(
            _SELECT + " WHERE conversation = ? ORDER BY sent DESC, id DESC LIMIT ?",
            (conversation, max(1, min(limit, MAX_PAGE))),
        )
        return [_message(row) for row in reversed(rows)]

    def conversations(self) -> list[dict[str, Any]]:
        """Every conversation: its peer, newest message and unread count, newest first."""
        rows = self._read(
            "SELECT conversation, peer, max(sent), count(*),"
            " sum(CASE WHEN outgoing = 0 AND status = 'unread' THEN 1 ELSE 0 END)"
            " FROM dm_messages GROUP BY conversation ORDER BY max(sent) DESC LIMIT ?",
            (MAX_CONVERSATIONS,),
        )
        return [
            {"id": conv.hex(), "peer": peer, "last": last, "messages": count, "unread": unread}
            for conv, peer, last, count, unread in rows
        ]

    def _one(self, message_id: bytes) -> DirectMessage:
        found = self.get(message_id)
        assert found is not None
        return found

    # --- plumbing ------------------------------------------------------------------------

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._db.transaction("store a direct message")

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return self._db.read(sql, params)

    @staticmethod
    def _event(
        conn: sqlite3.Connection,
        now_ms: int,
        kind: str,
        message_id: bytes,
        conversation: bytes,
        status: str,
    ) -> None:
        data = {"id": message_id.hex(), "conversation": conversation.hex(), "status": status}
        conn.execute(
            "INSERT INTO events (at, type, data) VALUES (?, ?, ?)",
            (now_ms, kind, msgspec.json.encode(data)),
        )


def _message(row: Any) -> DirectMessage:
    mid, conv, peer, outgoing, sent, stored, text, listing, status, detail = row
    return DirectMessage(
        mid, conv, peer, bool(outgoing), sent, stored, text, listing, status, detail
    )
