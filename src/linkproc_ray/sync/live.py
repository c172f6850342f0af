"""Per-process live fan-out: one follow loop per org, shared by every socket of that org.

The loop long-polls the org's backend once for all its subscribers; each
subscriber keeps its own cursor, so it sees the log with no gap and no repeat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

from linkproc_ray.core.backoff import Backoff
from linkproc_ray.core.events import Event, PullResult
from linkproc_ray.errors import InvalidEvent, StoreError
from linkproc_ray.sync.ports import Gateway, OrgBackend

log = logging.getLogger(__name__)

PAGE_EVENTS: Final = 1000
"""Events per backlog page and per follow-loop pull."""

FOLLOW_WAIT: Final = 20.0
"""Seconds one long poll of the follow loop waits for news."""

MAX_QUEUED_EVENTS: Final = 10_000
"""Events a subscriber may have waiting before its queue is dropped (see :meth:`Subscription.offer`)."""


@dataclass(frozen=True, slots=True)
class _Failed:
    """Put on a subscriber's queue when the follow loop gives up: the subscriber raises it."""

    error: BaseException


class Subscription:
    """One subscriber's view of an org's log: its backlog after ``after``, then every live batch.

    Guarantee: the pages :meth:`pages` yields continue each other exactly
    (first seq = previous last seq + 1), whatever the follow loop did meanwhile.
    A slow subscriber never blocks the loop or other subscribers: when its
    queue holds more than ``max_queued`` events the queue is dropped and the
    missing range is re-read from the log on its next read. Nothing is lost
    and the socket stays open; only that subscriber pays for the extra reads.
    """

    def __init__(self, backend: OrgBackend, after: int, *, page: int, max_queued: int) -> None:
        self.backend = backend
        self.cursor = after
        self.head = after
        self.overflows = 0
        self._page = page
        self._max_queued = max_queued
        self._queue: asyncio.Queue[PullResult | _Failed] = asyncio.Queue()
        self._queued_events = 0

    def offer(self, batch: PullResult) -> None:
        """Hand a live batch (or an empty one that only moves the head) over without waiting.

        Drops this subscriber's queue if it is full.
        """
        self.head = max(self.head, batch.head)
        if self._queued_events + len(batch.events) > self._max_queued:
            # Safe to drop: the next read sees the gap and fills it from the log.
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queued_events = 0
            self.overflows += 1
        self._queue.put_nowait(batch)
        self._queued_events += len(batch.events)

    def fail(self, error: BaseException) -> None:
        """Make the next read raise ``error`` (the follow loop could not reach the backend)."""
        self._queue.put_nowait(_Failed(error))

    async def pages(self) -> AsyncIterator[PullResult]:
        """The backlog after the cursor (at least one page, maybe empty, to announce the head), then live pages.

        Raises :class:`InvalidEvent` (field ``after``) when the cursor is beyond the head.
        """
        while True:
            page = await self.backend.pull(self.cursor, self._page, 0.0)
            if self.cursor > page.head:
                raise InvalidEvent(f"after={self.cursor} is beyond the head {page.head}", field="after")
            yield self._advance(page.events, page.head)
            if not page.events or page.events[-1].seq >= page.head:
                break
        while True:
            item = await self._queue.get()
            if isinstance(item, _Failed):
                raise item.error
            self._queued_events -= len(item.events)
            # Everything before this batch (or up to an empty batch's head) must be seen first.
            reach = item.events[0].seq - 1 if item.events else item.head
            while self.cursor < reach:
                gap = await self.backend.pull(self.cursor, min(self._page, reach - self.cursor), 0.0)
                if not gap.events:
                    raise StoreError(f"the log has no events after {self.cursor} though {reach} was committed")
                yield self._advance(gap.events, gap.head)
            fresh = [e for e in item.events if e.seq > self.cursor]
            if fresh:
                yield self._advance(fresh, item.head)

    def _advance(self, events: list[Event], head: int) -> PullResult:
        if events:
            self.cursor = events[-1].seq
        self.head = max(self.head, head, self.cursor)
        return PullResult(events=events, head=self.head)


class _Feed:
    """The follow loop of one org in this process and the subscribers it serves."""

    def __init__(
        self, org: str, backend: OrgBackend, *, page: int, wait: float, max_failures: int, retry_delay: float
    ) -> None:
        self.org = org
        self.backend = backend
        self.subscribers: set[Subscription] = set()
        self._page = page
        self._wait = wait
        self._max_failures = max_failures
        self._backoff = Backoff(initial=retry_delay, maximum=10.0)
        self._task = asyncio.create_task(self._follow(), name=f"live-follow:{org}")

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _follow(self) -> None:
        # The loop starts at the head: older events are each subscriber's own backlog.
        position: int | None = None
        failures = 0
        while True:
            try:
                if position is None:
                    position = (await self.backend.pull(0, 1, 0.0)).head
                    # A subscriber whose backlog ended before this head would
                    # never be offered the events up to it: tell it where the loop starts.
                    for subscriber in self.subscribers:
                        subscriber.offer(PullResult(events=[], head=position))
                    continue
                result = await self.backend.pull(position, self._page, self._wait)
            except Exception as exc:  # loop boundary: retry, then tell the subscribers
                failures += 1
                log.warning("follow loop of %s failed (%d)", self.org, failures, exc_info=True)
                if failures >= self._max_failures:
                    for subscriber in self.subscribers:
                        subscriber.fail(exc)
                    failures = 0
                await asyncio.sleep(self._backoff.delay(failures))
                continue
            failures = 0
            if result.events:
                position = result.events[-1].seq
                for subscriber in self.subscribers:
                    subscriber.offer(result)


class LiveHub:
    """Every org followed by this process, each by exactly one loop while it has subscribers.

    :param gateway: finds each org's backend.
    :param page: events per backlog page and per follow pull.
    :param wait: seconds of one long poll.
    :param max_queued: events a slow subscriber may have waiting before its queue is dropped.
    """

    def __init__(
        self,
        gateway: Gateway,
        *,
        page: int = PAGE_EVENTS,
        wait: float = FOLLOW_WAIT,
        max_queued: int = MAX_QUEUED_EVENTS,
        max_failures: int = 3,
        retry_delay: float = 0.5,
    ) -> None:
        self._gateway = gateway
        self._page = page
        self._wait = wait
        self._max_queued = max_queued
        self._max_failures = max_failures
        self._retry_delay = retry_delay
        self._feeds: dict[str, _Feed] = {}

    def followed_orgs(self) -> list[str]:
        """Orgs with a running follow loop: exactly those with subscribers."""
        return sorted(self._feeds)

    @asynccontextmanager
    async def subscribe(self, org: str, after: int) -> AsyncIterator[Subscription]:
        """Follow ``org`` from ``after`` for the duration of the block; the last one out stops the loop."""
        backend = await self._gateway.backend(org)
        feed = self._feeds.get(org)
        if feed is None:
            feed = _Feed(
                org,
                backend,
                page=self._page,
                wait=self._wait,
                max_failures=self._max_failures,
                retry_delay=self._retry_delay,
            )
            self._feeds[org] = feed
        subscription = Subscription(backend, after, page=self._page, max_queued=self._max_queued)
        feed.subscribers.add(subscription)
        try:
            yield subscription
        finally:
            feed.subscribers.discard(subscription)
            if not feed.subscribers and self._feeds.get(org) is feed:
                # Unregister before awaiting, so a newcomer starts a fresh loop.
                del self._feeds[org]
                await feed.stop()
