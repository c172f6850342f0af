"""The per-process fan-out without sockets: cursors stay gap-free however subscribers join or lag."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from tests.factories import link_created

from linkproc_ray.api.gateway import LocalGateway
from linkproc_ray.core.events import PullResult
from linkproc_ray.errors import StoreError
from linkproc_ray.sync.backend import SyncBackend
from linkproc_ray.sync.live import LiveHub, Subscription


@pytest.fixture
async def gateway() -> AsyncIterator[LocalGateway]:
    local = LocalGateway(None)
    yield local
    await local.close()


async def append_links(backend: SyncBackend, count: int, batch: int = 1) -> None:
    for _ in range(0, count, batch):
        await backend.push(backend.head, [link_created(f"l{backend.head}-{i}") for i in range(batch)])


async def read_until(subscription: Subscription, seq: int) -> list[int]:
    seqs: list[int] = []
    async for page in subscription.pages():
        seqs.extend(e.seq for e in page.events)
        if seqs and seqs[-1] >= seq:
            return seqs
    raise AssertionError("pages ended")


async def test_a_late_subscriber_gets_its_backlog_in_pages_then_live_batches_without_gap_or_repeat(gateway):
    backend = await gateway.backend("acme")
    await append_links(backend, 23)
    hub = LiveHub(gateway, page=5, wait=1.0)
    async with hub.subscribe("acme", 4) as subscription:
        reader = asyncio.create_task(read_until(subscription, 59))
        await append_links(backend, 36, batch=3)
        assert await reader == list(range(5, 60))


async def test_a_subscriber_that_lags_past_its_queue_still_sees_every_event_once(gateway):
    backend = await gateway.backend("acme")
    hub = LiveHub(gateway, wait=1.0, max_queued=4)
    async with hub.subscribe("acme", 0) as slow, hub.subscribe("acme", 0) as fast:
        fast_seqs: list[int] = []
        for round_ in range(20):
            await append_links(backend, 2, batch=2)
            # The fast reader takes each batch as the follow loop hands it over; the slow one reads nothing yet.
            fast_seqs += await read_until(fast, 2 * (round_ + 1))
        assert fast_seqs == list(range(1, 41))
        assert slow.overflows > 0
        assert await read_until(slow, 40) == list(range(1, 41))


async def test_the_follow_loop_stops_when_the_last_subscriber_leaves(gateway):
    hub = LiveHub(gateway, wait=1.0)
    async with hub.subscribe("acme", 0), hub.subscribe("acme", 0):
        assert hub.followed_orgs() == ["acme"]
    assert hub.followed_orgs() == []


class _BrokenBackend:
    """Answers the first look at the head, then fails every pull."""

    def __init__(self) -> None:
        self.pulls = 0

    async def pull(self, after: int = 0, limit: int = 1000, wait: float = 0.0) -> PullResult:
        self.pulls += 1
        if self.pulls > 2:
            raise StoreError("disk gone")
        return PullResult(events=[], head=0)


class _BrokenGateway:
    def __init__(self) -> None:
        self.backend_ = _BrokenBackend()

    async def backend(self, org: str) -> _BrokenBackend:
        return self.backend_


async def test_subscribers_hear_when_the_follow_loop_cannot_reach_the_backend():
    hub = LiveHub(_BrokenGateway(), max_failures=2, retry_delay=0.0)  # type: ignore[arg-type]
    async with hub.subscribe("acme", 0) as subscription:
        pages = subscription.pages()
        assert (await anext(pages)).head == 0
        with pytest.raises(StoreError, match="disk gone"):
            await anext(pages)
