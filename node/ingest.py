"""The one way records enter the store: from gossip, from sync, and from our own services.

Remote records are validated exactly alike whatever carried them; then stored in one
transaction per batch; then the sync index and the event feed learn about them. Blocking work
runs in worker threads: validation (Ed25519 in libsodium, which releases the GIL) may run for
one batch while the single writer commits the previous one, so a large sync uses both cores.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import trio

from zion.node.clock import now_ms
from zion.node.events import EventFeed
from zion.protocols.records import Record, validate_record
from zion.protocols.sync import ItemIndex
from zion.protocols.validation import Verdict
from zion.storage.records import Applied, RecordStore, sync_item

log = logging.getLogger(__name__)

#: Batches validated at once (each in its own thread).
MAX_CONCURRENT_VALIDATIONS: Final = 2


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


@dataclass(slots=True)
class Checked:
    """A batch after validation, before storing."""

    valid: list[Record]
    report: IngestReport


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
        self._validators = trio.CapacityLimiter(MAX_CONCURRENT_VALIDATIONS)
        # One writer: batches are committed one after another.
        self._writer = trio.CapacityLimiter(1)

    async def receive(self, blocks: list[bytes], *, reject_all_on_invalid: bool) -> IngestReport:
        """Validate and store records that came from a peer.

        With ``reject_all_on_invalid`` (gossip), one invalid record condemns the batch and
        nothing of it is stored: the message will not be forwarded either.
        """
        checked = await self.validate(blocks)
        if checked.report.rejected and reject_all_on_invalid:
            return checked.report
        return await self.store([checked])

    async def validate(self, blocks: list[bytes]) -> Checked:
        return await trio.to_thread.run_sync(self._validate, blocks, limiter=self._validators)

    def _validate(self, blocks: list[bytes]) -> Checked:
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
        return Checked(valid, report)

    async def store(self, batches: list[Checked]) -> IngestReport:
        """Store validated batches in one transaction; returns their combined report."""
        valid = [record for batch in batches for record in batch.valid]
        applied = (
            await trio.to_thread.run_sync(
                functools.partial(self._store.apply_many, valid, self._clock(), durable=False),
                limiter=self._writer,
            )
            if valid
            else []
        )
        report = IngestReport()
        for batch in batches:
            report.ignored += batch.report.ignored
            report.rejected += batch.report.rejected
            report.reject_reason = report.reject_reason or batch.report.reject_reason
        for item in applied:
            if item.stored:
                report.stored.append(item.record)
            else:
                report.ignored += 1
        self._after_store(applied)
        return report

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
