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

from ..errors import ParseTimeout
from .fetch import FetchedPage
from .parse import ParsedPage, parse_page
from .summarize import Summarizer, Summary, SummaryRequest

T = TypeVar("T")

CpuRunner = Callable[..., Awaitable[Any]]
"""``await run_cpu(fn, *args)`` runs a picklable top-level function off the event loop."""


class PageFetcher(Protocol):
    async def fetch(self, url: str) -> FetchedPage: ...


async def run_inline(fn: Callable[..., T], *args: Any) -> T:
    """A :data:`CpuRunner` for tests and tools: a worker thread of this process."""
    return await asyncio.to_thread(fn, *args)


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
        parse_timeout: float = 60.0,
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
            try:
                parsed: ParsedPage = await asyncio.wait_for(
                    self._run_cpu(parse_page, page.html, page.url), self._parse_timeout
                )
            except TimeoutError:
                # Not fetch:timeout: the page arrived; it was the CPU queue or the parse.
                raise ParseTimeout(f"parsing took longer than {self._parse_timeout:.0f} s") from None
            return page, parsed

    async def summarize(self, request: SummaryRequest) -> Summary:
        """A validated ``{summary, tags}``; raises typed :class:`AIError`."""
        async with self._summarize_lane:
            return await self.summarizer.summarize(request)
