"""The relayer's ledger: which ballots this node has submitted on-chain, and how it went.

States: ``sending`` (written, and committed with fsync, before the transaction is sent), then
``done`` (mined, or found already counted on-chain) or ``failed`` (with the reason). A ballot
left in ``sending`` by a crash is checked against the chain before anything is sent again.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Final

from zion.storage.database import Database
from zion.storage.errors import StorageError

SENDING: Final = "sending"
DONE: Final = "done"
FAILED: Final = "failed"


@dataclass(frozen=True)
class Relay:
    record_id: str
    state: str
    tx_hash: str | None
    detail: str | None


class RelayLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, record_id: str) -> Relay | None:
        with self._db.read_lock:
            row = self._db.reader.execute(
                "SELECT record_id, state, tx_hash, detail FROM relayed_ballots WHERE record_id = ?",
                (record_id,),
            ).fetchone()
        return Relay(*row) if row else None

    def mark(
        self,
        record_id: str,
        state: str,
        *,
        governor: str = "",
        proposal_id: str = "",
        voter: str = "",
        nonce: str = "",
        tx_hash: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record a state, durably (synchronous=FULL) before the caller acts on it."""
        with self._db.lock:
            try:
                self._db.conn.execute("PRAGMA synchronous = FULL")
                self._db.conn.execute(
                    "INSERT INTO relayed_ballots (record_id, governor, proposal_id, voter, nonce,"
                    " state, tx_hash, detail, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (record_id) DO UPDATE SET state = excluded.state,"
                    " tx_hash = coalesce(excluded.tx_hash, tx_hash), detail = excluded.detail,"
                    " updated = excluded.updated",
                    (
                        record_id,
                        governor,
                        proposal_id,
                        voter,
                        nonce,
                        state,
                        tx_hash,
                        detail,
                        int(time.time() * 1000),
                    ),
                )
            except sqlite3.Error as exc:
                raise StorageError(f"cannot record a relayed ballot: {exc}") from exc

    def counts(self) -> dict[str, int]:
        with self._db.read_lock:
            rows = self._db.reader.execute(
                "SELECT state, count(*) FROM relayed_ballots GROUP BY state"
            ).fetchall()
        return {state: count for state, count in rows}
