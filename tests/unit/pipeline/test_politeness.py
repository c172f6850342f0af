"""Politeness per site: a few fetches at once per host, a slow host takes no other host's lanes, Retry-After is kept.

Two real page servers on two loopback host names (127.0.0.2 and 127.0.0.3,
both allowlisted) count the requests they serve at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from tests.pages import PageServer, Reply

from linkproc_ray.errors import FetchError, StaleDecision
from linkproc_ray.pipeline.enricher import Enricher, Lanes
from linkproc_ray.pipeline.fetch import Fetcher, FetchLimits
from linkproc_ray.pipeline.hosts import HostGate
from linkproc_ray.pipeline.ssrf import FetchPolicy
from linkproc_ray.summarize.extractive import ExtractiveSummarizer

PAGE = b"<!doctype html><html><head><title>Page</title></head><body><p>Some words to read.</p></body></html>"


def slow_page(seconds: float) -> Reply:
    """A page whose one chunk comes after ``seconds``."""
    return Reply(body=lambda: iter([PAGE]), headers={"Content-Type": "text/html"}, delay=seconds)


@pytest.fixture
def slow_host() -> Iterator[PageServer]:
    with PageServer("127.0.0.2") as server:
        yield server


@pytest.fixture
def fast_host() -> Iterator[PageServer]:
    with PageServer("127.0.0.3") as server:
        yield server


@pytest.fixture
async def gate() -> HostGate:
    return HostGate(per_host=2)


@pytest.fixture
async def enricher(slow_host: PageServer, fast_host: PageServer, gate: HostGate) -> AsyncIterator[Enricher]:
    policy = FetchPolicy.from_allow_list(f"{slow_host.host},{fast_host.host}")
    fetcher = Fetcher(policy, FetchLimits(total_timeout=20, backoff_base=0.05), hosts=gate)
    yield Enricher(fetcher, ExtractiveSummarizer(), lanes=Lanes(fetch=4), hosts=gate)
    await fetcher.aclose()


async def test_at_most_two_fetches_at_once_reach_one_host(slow_host, enricher):
    urls = [slow_host.reply(f"/p{i}", slow_page(0.2)) for i in range(8)]
    await asyncio.gather(*(enricher.fetch(url) for url in urls))
    assert slow_host.peak_concurrent == {"127.0.0.2": 2}


async def test_a_slow_host_does_not_hold_back_the_others(slow_host, fast_host, enricher):
    slow = [slow_host.reply(f"/slow{i}", slow_page(0.5)) for i in range(8)]
    fast = [fast_host.page(f"/fast{i}", PAGE) for i in range(8)]
    finished: dict[str, float] = {}

    async def fetch(url: str) -> None:
        await enricher.fetch(url)
        finished[url] = time.monotonic()

    # The slow host's links come first, as a file sorted by site would send them.
    await asyncio.gather(*(fetch(url) for url in slow + fast))
    assert slow_host.peak_concurrent["127.0.0.2"] == 2
    assert fast_host.peak_concurrent["127.0.0.3"] <= 2
    slow_done = sorted(finished[url] for url in slow)
    # Eight slow pages two at a time take four rounds of 0.5 s; every fast page is done within the first.
    assert max(finished[url] for url in fast) < slow_done[1]


async def test_a_retry_after_pauses_every_fetch_to_that_host(slow_host, enricher, gate):
    busy = slow_host.sequence(
        "/busy",
        Reply(status=429, headers={"Retry-After": "1"}),
        Reply(body=PAGE, headers={"Content-Type": "text/html"}),
    )
    other = slow_host.page("/other", PAGE)
    first = asyncio.ensure_future(enricher.fetch(busy))
    while slow_host.hits("/busy") == 0:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # the 429 has arrived and been read
    await enricher.fetch(other)
    await first
    asked = next(r.at for r in slow_host.requests if r.path == "/busy")
    started_other = next(r.at for r in slow_host.requests if r.path == "/other")
    assert started_other - asked >= 0.9


async def test_a_host_s_state_is_dropped_once_nothing_waits_for_it(slow_host, enricher, gate):
    await enricher.fetch(slow_host.page("/a", PAGE))
    assert gate.active == {} and gate._slots == {}


async def test_a_host_s_slot_is_held_for_the_fetch_not_for_the_mark_that_runs_beside_it(slow_host, enricher):
    # The processor's mark (Started) is a round trip to the backend; a slot held for it would
    # keep the host's other links waiting. Eight pages, two slots, each mark 0.5 s long.
    urls = [slow_host.page(f"/p{i}", PAGE) for i in range(8)]
    marks_ended: dict[str, float] = {}

    async def fetch(url: str) -> float:
        async def mark() -> None:
            await asyncio.sleep(0.5)
            marks_ended[url] = time.monotonic()

        await enricher.fetch(url, on_admitted=mark)
        return time.monotonic()

    began = time.monotonic()
    returned = await asyncio.gather(*(fetch(url) for url in urls))
    assert slow_host.peak_concurrent["127.0.0.2"] <= 2
    # Held for the marks, the slots would admit the last pair after 4 × 0.5 s.
    assert max(r.at for r in slow_host.requests) - began < 1.0
    # Nothing is returned before its mark ended: the mark precedes every outcome.
    assert all(marks_ended[url] <= done for url, done in zip(urls, returned, strict=True))


async def test_a_fetch_error_is_raised_only_once_the_mark_has_ended(slow_host, enricher):
    marked: list[str] = []

    async def mark() -> None:
        await asyncio.sleep(0.3)
        marked.append("Started")

    with pytest.raises(FetchError) as failed:
        await enricher.fetch(f"http://{slow_host.host_port}/missing", on_admitted=mark)
    assert failed.value.code == "fetch:404"
    assert marked == ["Started"]


async def test_a_stale_mark_wins_over_the_fetch_s_error(slow_host, enricher):
    async def mark() -> None:
        raise StaleDecision("a")

    with pytest.raises(StaleDecision):
        await enricher.fetch(f"http://{slow_host.host_port}/missing", on_admitted=mark)


async def test_cancelling_a_fetch_cancels_its_mark(slow_host, enricher):
    mark_cancelled = asyncio.Event()

    async def mark() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            mark_cancelled.set()
            raise

    url = slow_host.reply("/slow", slow_page(5))
    fetching = asyncio.ensure_future(enricher.fetch(url, on_admitted=mark))
    while slow_host.hits("/slow") == 0:
        await asyncio.sleep(0.01)
    fetching.cancel()
    await asyncio.wait_for(mark_cancelled.wait(), 2)
