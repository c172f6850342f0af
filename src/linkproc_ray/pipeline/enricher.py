"""The enrichment steps the processor runs for one link, with their concurrency lanes.

Fetching (network) and parsing (CPU, off the event loop through an executor
seam) share the fetch lane; summarization has its own lane, so a slow model
never starves fetching.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from linkproc_ray.errors import ParseTimeout
from linkproc_ray.pipeline.fetch import FetchedPage
from linkproc_ray.pipeline.parse import ParsedPage, parse_page
from linkproc_ray.summarize.protocol import Summarizer, Summary, SummaryRequest

T = TypeVar("T")

CpuRunner = Callable[..., Awaitable[Any]]
"""``await run_cpu(fn, *args, timeout=s)`` runs a picklable top-level function off the event loop.

``timeout`` bounds the function's own run; raising :class:`ParseTimeout`
past it. Time spent queued for a CPU is backpressure, not a failure.
"""


class PageFetcher(Protocol):
    async def fetch(self, url: str) -> FetchedPage: ...


async def run_inline(fn: Callable[..., T], *args: Any, timeout: float) -> T:
    """A :data:`CpuRunner` for tests and tools: a worker thread of this process.

    A thread cannot be stopped, so past ``timeout`` its result is abandoned.
    """
    try:
        return await asyncio.wait_for(asyncio.to_thread(fn, *args), timeout)
    except TimeoutError:
        raise ParseTimeout(f"{getattr(fn, '__name__', 'step')} took longer than {timeout:g} s") from None


@dataclass(frozen=True, slots=True)
class Lanes:
    """How many links may be in each stage at once."""

    fetch: int = 8
    summarize: int = 3


class Enricher:
    """Fetch, parse and summarize, each bounded by its lane."""

    def __init__(
        self,
        fetcher: PageFetcher,
        summarizer: Summarizer,
        *,
        run_cpu: CpuRunner = run_inline,
        lanes: Lanes = Lanes(),
        parse_timeout: float = 30.0,
    ) -> None:
        self.fetcher = fetcher
        self.summarizer = summarizer
        self._run_cpu = run_cpu
        self._fetch_lane = asyncio.Semaphore(lanes.fetch)
        self._summarize_lane = asyncio.Semaphore(lanes.summarize)
        self._parse_timeout = parse_timeout

    async def fetch(self, url: str) -> tuple[FetchedPage, ParsedPage]:
        """The page and what it says; raises typed :class:`FetchError`."""
        async with self._fetch_lane:
            page = await self.fetcher.fetch(url)
            parsed: ParsedPage = await self._run_cpu(parse_page, page.html, page.url, timeout=self._parse_timeout)
            return page, parsed

    async def summarize(self, request: SummaryRequest) -> Summary:
        """A validated ``{summary, tags}``; raises typed :class:`AIError`."""
        async with self._summarize_lane:
            return await self.summarizer.summarize(request)
