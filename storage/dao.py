"""The DAO as seen on-chain, kept by the chain watcher: proposals, votes, and how far it read.

Everything here comes from confirmed blocks; writes are idempotent upserts, so blocks read
again after a reorg (the watcher rewinds) change nothing twice. Each batch of events is one
transaction with the cursor, and appends to the node's event log.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import msgspec

from zion.storage.database import Database
from zion.storage.errors import StorageError


@dataclass(frozen=True)
class ChainEvent:
    """One Governor event. ``kind``: created, vote, queued, executed, canceled."""

    kind: str
    block: int
    log_index: int
    proposal_id: int
    data: dict[str, Any]


class DaoStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def cursor(self, governor: str) -> tuple[int, str] | None:
        with self._db.read_lock:
            row = self._db.reader.execute(
                "SELECT block, block_hash FROM dao_cursor WHERE governor = ?", (governor.lower(),)
            ).fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def apply(
        self, governor: str, events: list[ChainEvent], block: int, block_hash: str, now_ms: int
    ) -> None:
        """Store ``events`` (all confirmed, up to ``block``) and move the cursor there."""
        gov = governor.lower()
        conn = self._db.conn
        with self._db.lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                for event in sorted(events, key=lambda e: (e.block, e.log_index)):
                    self._apply_one(conn, gov, event, now_ms)
                conn.execute(
                    "INSERT INTO dao_cursor (governor, block, block_hash) VALUES (?, ?, ?)"
                    " ON CONFLICT (governor) DO UPDATE SET block = excluded.block,"
                    " block_hash = excluded.block_hash",
                    (gov, block, block_hash),
                )
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StorageError(f"cannot store chain events: {exc}") from exc
                raise

    def rewind(self, governor: str, block: int) -> None:
        with self._db.lock:
            self._db.conn.execute(
                "UPDATE dao_cursor SET block = ?, block_hash = '' WHERE governor = ?",
                (block, governor.lower()),
            )

    def proposals(self, governor: str) -> list[dict[str, Any]]:
        with self._db.read_lock:
            rows = self._db.reader.execute(
                "SELECT p.proposal_id, p.proposer, p.description, p.snapshot, p.deadline,"
                " p.state, p.created_block,"
                " (SELECT group_concat(v.support || ':' || v.weight, ',') FROM dao_votes v"
                "  WHERE v.governor = p.governor AND v.proposal_id = p.proposal_id)"
                " FROM dao_proposals p WHERE p.governor = ? ORDER BY p.created_block DESC",
                (governor.lower(),),
            ).fetchall()
        out = []
        for pid, proposer, description, snapshot, deadline, state, block, votes in rows:
            tally = [0, 0, 0]
            for item in (votes or "").split(","):
                if item:
                    support, weight = item.split(":")
                    tally[int(support)] += int(weight)
            out.append(
                {
                    "id": pid,
                    "proposer": proposer,
                    "description": description,
                    "snapshot": snapshot,
                    "deadline": deadline,
                    "last_event": state,
                    "block": block,
                    "votes": {
                        "against": str(tally[0]),
                        "for": str(tally[1]),
                        "abstain": str(tally[2]),
                    },
                }
            )
        return out

    @staticmethod
    def _apply_one(conn: sqlite3.Connection, gov: str, event: ChainEvent, now_ms: int) -> None:
        pid = str(event.proposal_id)
        data = event.data
        if event.kind == "created":
            conn.execute(
                "INSERT INTO dao_proposals (governor, proposal_id, proposer, description,"
                " snapshot, deadline, state, created_block) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (governor, proposal_id) DO NOTHING",
                (gov, pid, data["proposer"], data["description"], data["snapshot"],
                 data["deadline"], "created", event.block),
            )  # fmt: skip
        elif event.kind == "vote":
            conn.execute(
                "INSERT INTO dao_votes (governor, proposal_id, voter, support, weight, block)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (governor, proposal_id, voter)"
                " DO UPDATE SET support = excluded.support, weight = excluded.weight",
                (gov, pid, data["voter"], data["support"], str(data["weight"]), event.block),
            )
        else:
            conn.execute(
                "UPDATE dao_proposals SET state = ? WHERE governor = ? AND proposal_id = ?",
                (event.kind, gov, pid),
            )
        payload = {"governor": gov, "proposal_id": pid, "block": event.block, **_jsonable(data)}
        conn.execute(
            "INSERT INTO events (at, type, data) VALUES (?, ?, ?)",
            (now_ms, f"dao.{event.kind}", msgspec.json.encode(payload)),
        )


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """Big integers as decimal text (JSON readers lose precision past 2^53)."""
    return {
        k: str(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in data.items()
    }
