"""The one way records enter the store: from gossip, from sync, and from our own services.

Remote records are validated exactly alike whatever carried them; then stored in one
transaction per batch; then the sync index and the event feed learn about them. Blocking work
(Ed25519 checks, SQLite commits) runs in a worker thread, one batch at a time, so the event loop
keeps serving while a large sync lands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from zion.node.clock import now_ms
from zion.node.events import EventFeed
from zion.protocols.records import Record, validate_record
from zion.protocols.sync import ItemIndex
from zion.protocols.validation import Verdict
from zion.storage.records import Applied, RecordStore, sync_item

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestReport:
    stored: list[Record] = field(default_factory=list)
    ignored: int = 0
    rejected: int = 0
    #: The first reject reason, for logs and peer scoring.
    reject_reason: str = ""

    @property
    def verdict(self) -> Verdict:
        if self.rejected:
            return Verdict.REJECT
        return Verdict.ACCEPT if self.stored else Verdict.IGNORE


class Ingest:
    def __init__(
        self,
        store: RecordStore,
        index: ItemIndex,
        feed: EventFeed,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._store = store
        self._index = index
        self._feed = feed
        self._clock = clock
        # One writer: batches are validated and committed one after another.
        self._writer = trio.CapacityLimiter(1)

    async def receive(self, blocks: list[bytes], *, reject_all_on_invalid: bool) -> IngestReport:
        """Validate and store records that came from a peer.

        With ``reject_all_on_invalid`` (gossip), one invalid record condemns the batch and
        nothing of it is stored: the message will not be forwarded either.
        """
        report = await trio.to_thread.run_sync(
            self._receive_sync, blocks, reject_all_on_invalid, limiter=self._writer
        )
        self._after_store(report.stored_applied)
        return report.report

    def _receive_sync(self, blocks: list[bytes], reject_all: bool) -> _Outcome:
        now = self._clock()
        report = IngestReport()
        valid: list[Record] = []
        for block in blocks:
            result, record = validate_record(block, now)
            if result.verdict is Verdict.REJECT:
                report.rejected += 1
                report.reject_reason = report.reject_reason or result.reason
            elif result.verdict is Verdict.IGNORE or record is None:
                report.ignored += 1
            else:
                valid.append(record)
        if report.rejected and reject_all:
            return _Outcome(report, [])
        applied = self._store.apply_many(valid, now) if valid else []
        for item in applied:
            if item.stored:
                report.stored.append(item.record)
            else:
                report.ignored += 1
        return _Outcome(report, applied)

    async def store_own(self, record: Record) -> Applied:
        """Store a record this node just signed; durable when this returns."""
        applied = await trio.to_thread.run_sync(
            self._store.apply, record, self._clock(), limiter=self._writer
        )
        self._after_store([applied])
        return applied

    def _after_store(self, applied: list[Applied]) -> None:
        changed = False
        for item in applied:
            if not item.stored:
                continue
            changed = True
            if item.replaced is not None:
                self._index.discard(item.replaced)
            self._index.add(sync_item(item.record))
        if changed:
            self._feed.notify()

    async def expire(self) -> int:
        gone = await trio.to_thread.run_sync(
            self._store.expire, self._clock(), limiter=self._writer
        )
        for item in gone:
            self._index.discard(item)
        if gone:
            self._feed.notify()
        return len(gone)


@dataclass(slots=True)
class _Outcome:
    report: IngestReport
    stored_applied: list[Applied]
