"""Wakes SSE streams when the event log grows; the log itself is in the database."""

from __future__ import annotations

import trio

from zion.gateway.services import LogEvent
from zion.storage.records import RecordStore


class EventFeed:
    def __init__(self, store: RecordStore) -> None:
        self._store = store
        self._last = store.last_event_id()
        self._changed = trio.Event()

    def notify(self) -> None:
        """Call after committing events (from the trio thread)."""
        self._last = self._store.last_event_id()
        self._changed.set()
        self._changed = trio.Event()

    def after(self, event_id: int, limit: int) -> list[LogEvent]:
        return [LogEvent(e.id, e.type, e.data) for e in self._store.events_after(event_id, limit)]

    def last_id(self) -> int:
        return self._last

    async def wait_after(self, event_id: int) -> None:
        while self._last <= event_id:
            await self._changed.wait()
