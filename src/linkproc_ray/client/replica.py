"""The SDK's local store: the confirmed log, pending commits, and tables equal to confirmed + pending."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import aiosqlite

from linkproc_ray.core.events import Event, NewEvent
from linkproc_ray.core.limits import ENVELOPE_BYTES, MAX_PUSH_BYTES, MAX_PUSH_EVENTS
from linkproc_ray.core.store import EventStore
from linkproc_ray.errors import LogGap

PUSH_BYTES: Final = MAX_PUSH_BYTES - ENVELOPE_BYTES
"""Bytes of events per push: below the server's limit, with room for the envelope."""

_LOG_PAGE: Final = 5000
"""Events read at a time while a rebase replays the confirmed log."""


class Replica:
    """The local store: confirmed log, pending commits, and tables equal to confirmed + pending.

    Every write holds one lock and one transaction, so readers never see
    confirmed events without the pending ones re-applied on top.
    """

    def __init__(self, path: str | Path) -> None:
        self.store = EventStore(path, keep_pending=True)
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        await self.store.open()

    async def close(self) -> None:
        await self.store.close()

    @property
    def head(self) -> int:
        """The last confirmed seq."""
        return self.store.head

    async def meta(self, key: str, default: Callable[[], str]) -> str:
        """A persisted value of this replica, made by ``default`` on first use."""
        value = await self.store.get_meta(key)
        if value is None:
            value = default()
            await self.store.set_meta(key, value)
        return value

    async def pending(self) -> list[NewEvent]:
        """Unconfirmed commits, oldest first."""
        return await self.store.pending_events()

    async def pending_batch(self, max_events: int = MAX_PUSH_EVENTS, max_bytes: int = PUSH_BYTES) -> list[NewEvent]:
        """The oldest pending commits that fit one push."""
        return (await self.push_batch(max_events, max_bytes))[1]

    async def push_batch(
        self, max_events: int = MAX_PUSH_EVENTS, max_bytes: int = PUSH_BYTES
    ) -> tuple[int, list[NewEvent]]:
        """``(parent, batch)``: the head and the oldest pending commits that fit one push, read as one snapshot.

        Holds the lock, so a :meth:`confirm` running meanwhile is seen whole or
        not at all: never its new head with commits it is about to unqueue.
        """
        async with self._lock:
            return self.head, self._fit(await self.pending(), max_events, max_bytes)

    @staticmethod
    def _fit(pending: list[NewEvent], max_events: int, max_bytes: int) -> list[NewEvent]:
        batch: list[NewEvent] = []
        size = 2
        for event in pending:
            size += len(json.dumps(event.to_json(), separators=(",", ":")).encode()) + 1
            if len(batch) >= max_events or (batch and size > max_bytes):
                break
            batch.append(event)
        return batch

    async def commit(self, event: NewEvent) -> None:
        """Apply a new local event to the tables at once and queue it for push."""
        async with self._lock, self.store.transaction() as db:
            await self.store.materialize(db, _as_pending(event, self.head))
            await self.store.queue_pending(db, event)

    async def confirm(self, events: Sequence[Event]) -> int:
        """Add confirmed events (already known ones are skipped); returns how many were new.

        Without pending commits the events are applied incrementally. With
        pending ones, the confirmed ones among them leave the queue and the
        tables are rebuilt as the whole confirmed log plus what stays pending.
        Raises :class:`LogGap` on a gap in seqs.
        """
        async with self._lock:
            fresh = [e for e in events if e.seq > self.head]
            if not fresh:
                return 0
            if fresh[0].seq != self.head + 1:
                raise LogGap(f"got seq {fresh[0].seq} after head {self.head}: a gap")
            pending = await self.pending()
            async with self.store.transaction() as db:
                await self.store.apply(db, fresh)
                if pending:
                    confirmed = {e.id for e in fresh}
                    await self.store.unqueue(db, confirmed)
                    await self._rebuild(db, [p for p in pending if p.id not in confirmed])
            return len(fresh)

    async def _rebuild(self, db: aiosqlite.Connection, pending: list[NewEvent]) -> None:
        # The simplest correct rebase: replay the confirmed log, then the pending commits.
        await self.store.clear_tables(db)
        after = 0
        while True:
            page = await self.store.read_events(after, _LOG_PAGE, in_transaction=True)
            for event in page:
                await self.store.materialize(db, event)
            if len(page) < _LOG_PAGE:
                break
            after = page[-1].seq
        for new_event in pending:
            await self.store.materialize(db, _as_pending(new_event, self.head))


def _as_pending(event: NewEvent, head: int) -> Event:
    # Materializers read only the args; a pending event has no seq of its own yet.
    return event.at(0, head)
