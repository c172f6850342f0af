"""The enrichment steps the processor runs for one link, with their concurrency lanes.

Fetching (network) and parsing (CPU, off the event loop through an executor
seam) share the fetch lane; summarization has its own lane, so a slow model
never starves fetching. Before a fetch lane, a link takes a slot of its host
(:class:`~linkproc_ray.pipeline.hosts.HostGate`), so one slow host cannot hold
every lane.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from linkproc_ray.errors import ParseTimeout
from linkproc_ray.pipeline.fetch import FetchedPage
from linkproc_ray.pipeline.hosts import HostGate, host_of
from linkproc_ray.pipeline.page import ParsedPage
from linkproc_ray.summarize.protocol import Summarizer, Summary, SummaryRequest

Step = str | Callable[..., Any]
"""A CPU-bound function, or its name as ``"module:function"``: a name is imported only where the step runs."""

PARSE_PAGE: Final = "linkproc_ray.pipeline.parse:parse_page"
"""The parser, by name: the processor never loads lxml, BeautifulSoup or trafilatura; the parse worker does."""

CpuRunner = Callable[..., Awaitable[Any]]
"""``await run_cpu(step, *args, timeout=s)`` runs a :data:`Step` off the event loop.

``timeout`` bounds the function's own run; raising :class:`ParseTimeout`
past it. Time spent queued for a CPU is backpressure, not a failure.
"""


class PageFetcher(Protocol):
    async def fetch(self, url: str) -> FetchedPage: ...


def resolve(step: Step) -> Callable[..., Any]:
    """The function a :data:`Step` names (imported here, in the process that runs it)."""
    if callable(step):
        return step
    module, _, name = step.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return function


def call_step(step: Step, *args: Any) -> Any:
    """Run a step in this process: what a process pool is handed (a top-level function of plain data)."""
    return resolve(step)(*args)


def step_name(step: Step) -> str:
    return step if isinstance(step, str) else getattr(step, "__name__", "step")


async def run_inline(step: Step, *args: Any, timeout: float) -> Any:
    """A :data:`CpuRunner` for tests and tools: a worker thread of this process.

    A thread cannot be stopped, so past ``timeout`` its result is abandoned.
    """
    try:
        return await asyncio.wait_for(asyncio.to_thread(call_step, step, *args), timeout)
    except TimeoutError:
        raise ParseTimeout(f"{step_name(step)} took longer than {timeout:g} s") from None


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
        hosts: HostGate | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.hosts = hosts or HostGate()
        self.summarizer = summarizer
        self._run_cpu = run_cpu
        self._fetch_lane = asyncio.Semaphore(lanes.fetch)
        self._summarize_lane = asyncio.Semaphore(lanes.summarize)
        self._parse_timeout = parse_timeout

    async def fetch(
        self, url: str, *, on_admitted: Callable[[], Awaitable[None]] | None = None
    ) -> tuple[FetchedPage, ParsedPage]:
        """The page and what it says; raises typed :class:`FetchError`.

        ``on_admitted`` runs once its host's slot and then the fetch lane
        admitted the link: the processor marks the link Started only then, so
        links waiting for a host or a lane spend no attempt. It runs beside the
        fetch (a GET changes nothing), and the host's slot is given back when the
        fetch ends, so a slot is held for the fetch alone, not for the mark's
        round trip or the parse. Nothing is parsed or returned before the mark
        ended, so it precedes every outcome, and its error (a stale decision)
        wins over the fetch's.
        """
        async with contextlib.AsyncExitStack() as lane:
            async with self.hosts.slot(host_of(url)):
                await lane.enter_async_context(self._fetch_lane)
                marking = asyncio.ensure_future(on_admitted()) if on_admitted is not None else None
                try:
                    page = await self.fetcher.fetch(url)
                except asyncio.CancelledError:
                    if marking is not None:
                        marking.cancel()
                    raise
                except Exception:
                    if marking is not None:
                        await marking
                    raise
            if marking is not None:
                await marking
            parsed: ParsedPage = await self._run_cpu(PARSE_PAGE, page.html, page.url, timeout=self._parse_timeout)
            return page, parsed

    async def summarize(self, request: SummaryRequest) -> Summary:
        """A validated ``{summary, tags}``; raises typed :class:`AIError`."""
        async with self._summarize_lane:
            return await self.summarizer.summarize(request)
