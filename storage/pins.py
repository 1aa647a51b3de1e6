"""Pins: the content roots the node keeps, and who asked for each.

A pin is recursive: the root and every block below it. Owners make pins composable: a member's
own pin (``user``) and a listing's pin on its images (``listing:<author>/<subject>``) are
separate rows, so unpinning one never drops content another still needs.
"""

import sqlite3
import time
from dataclasses import dataclass
from typing import Final

from zion.protocols.cid import Cid
from zion.storage.database import Database
from zion.storage.errors import StorageError

USER: Final = "user"


def listing_owner(author: str, subject: str) -> str:
    return f"listing:{author}/{subject}"


@dataclass(frozen=True, slots=True)
class Pin:
    cid: Cid
    owners: tuple[str, ...]


class PinStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, cid: Cid, owner: str = USER) -> bool:
        """Pin ``cid`` for ``owner``; False if that pin existed."""
        cursor = self._write(
            "INSERT OR IGNORE INTO pins (cid, owner, created) VALUES (?, ?, ?)",
            (str(cid.to_v1()), owner, int(time.time() * 1000)),
        )
        return cursor.rowcount == 1

    def remove(self, cid: Cid, owner: str = USER) -> bool:
        cursor = self._write(
            "DELETE FROM pins WHERE cid = ? AND owner = ?", (str(cid.to_v1()), owner)
        )
        return cursor.rowcount == 1

    def replace_owner(self, owner: str, cids: list[Cid]) -> None:
        """Make ``owner``'s pins exactly ``cids`` (a listing updated its images)."""
        now = int(time.time() * 1000)
        with self._db.lock:
            conn = self._db.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("DELETE FROM pins WHERE owner = ?", (owner,))
                conn.executemany(
                    "INSERT OR IGNORE INTO pins (cid, owner, created) VALUES (?, ?, ?)",
                    [(str(cid.to_v1()), owner, now) for cid in cids],
                )
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StorageError(f"cannot update pins: {exc}") from exc

    def is_pinned(self, cid: Cid) -> bool:
        with self._db.read_lock:
            row = self._db.reader.execute(
                "SELECT 1 FROM pins WHERE cid = ? LIMIT 1", (str(cid.to_v1()),)
            ).fetchone()
        return row is not None

    def pins(self) -> list[Pin]:
        with self._db.read_lock:
            rows = self._db.reader.execute(
                "SELECT cid, group_concat(owner, ' ') FROM pins GROUP BY cid ORDER BY cid"
            ).fetchall()
        return [Pin(Cid.parse(cid), tuple(sorted(owners.split(" ")))) for cid, owners in rows]

    def _write(self, sql: str, params: tuple[object, ...]) -> sqlite3.Cursor:
        with self._db.lock:
            try:
                return self._db.conn.execute(sql, params)
            except sqlite3.Error as exc:
                raise StorageError(f"cannot update pins: {exc}") from exc
