"""An in-process org: a real sync backend and real processors on SQLite files, fetching from loopback.

Used by the processor tests to read the truth from the backend's log, as the
fault tests on Ray do.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from linkproc_ray.core.events import TERMINAL_EVENTS, Event
from linkproc_ray.core.store import EventStore
from linkproc_ray.pipeline.enricher import Enricher, Lanes
from linkproc_ray.pipeline.fetch import Fetcher, FetchLimits
from linkproc_ray.pipeline.ssrf import FetchPolicy
from linkproc_ray.summarize.extractive import ExtractiveSummarizer
from linkproc_ray.summarize.protocol import Summarizer
from linkproc_ray.sync.backend import SyncBackend
from linkproc_ray.sync.processor import LinkProcessor, ProcessorSettings


def one_clean_run(names: list[str]) -> list[str]:
    """The event names of a link saved and processed once without trouble (the tag count varies)."""
    return [
        "v1.LinkCreated",
        "v1.LinkProcessingStarted",
        "v1.LinkMetadataFetched",
        "v1.LinkSummarized",
        *["v1.TagSuggested"] * names.count("v1.TagSuggested"),
        "v1.LinkProcessingCompleted",
    ]


FAST = ProcessorSettings(pull_wait=1.0, sweep_interval=0.5, retry_backoff=0.05)


class Org:
    """One org's backend plus (re)startable processors sharing one ``processor.sqlite``."""

    def __init__(self, root: Path, allow_hosts: str, *, poke: bool = True) -> None:
        self.root = root
        self.allow_hosts = allow_hosts
        self.backend = SyncBackend(EventStore(root / "backend.sqlite"), poke=self._poke if poke else None)
        self.processor: LinkProcessor | None = None

    async def __aenter__(self) -> Org:
        await self.backend.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.processor is not None:
            await self.processor.stop()
        await self.backend.close()

    async def _poke(self) -> None:
        if self.processor is not None:
            await self.processor.poke()

    def new_processor(
        self,
        *,
        summarizer: Summarizer | None = None,
        lanes: Lanes = Lanes(),
        settings: ProcessorSettings = FAST,
        fetch_timeout: float = 5.0,
    ) -> LinkProcessor:
        fetcher = Fetcher(
            FetchPolicy.from_allow_list(self.allow_hosts),
            FetchLimits(total_timeout=fetch_timeout, retries=0),
        )
        self.processor = LinkProcessor(
            EventStore(self.root / "processor.sqlite", keep_log=False, durable=False),
            self.backend,
            Enricher(fetcher, summarizer or ExtractiveSummarizer(), lanes=lanes),
            client_id="link-processor:test",
            settings=settings,
        )
        return self.processor

    async def crash_processor(self) -> None:
        """Stop the processor the way a killed actor stops: mid-work, nothing finished."""
        assert self.processor is not None
        await self.processor.stop()
        self.processor = None

    async def log(self) -> list[Event]:
        return (await self.backend.pull(0, 10_000)).events

    async def names_for(self, link_id: str) -> list[str]:
        return [
            e.name
            for e in await self.log()
            if e.args.get("linkId") == link_id or (e.name.startswith("v1.Link") and e.args.get("id") == link_id)
        ]

    async def wait_until(self, predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
        deadline = asyncio.get_running_loop().time() + timeout
        while not await predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"condition not met within {timeout} s; log: {[e.name for e in await self.log()]}")
            await asyncio.sleep(0.05)

    async def wait_for_event(self, link_id: str, name: str, timeout: float = 20.0) -> None:
        """Until the log holds an event ``name`` about ``link_id``."""

        async def in_log() -> bool:
            return name in await self.names_for(link_id)

        await self.wait_until(in_log, timeout)

    async def wait_terminal(self, link_ids: list[str], timeout: float = 20.0) -> None:
        async def all_terminal() -> bool:
            ended = {e.args["linkId"] for e in await self.log() if e.name in TERMINAL_EVENTS}
            return set(link_ids) <= ended

        await self.wait_until(all_terminal, timeout)

    async def settled(self, timeout: float = 20.0) -> None:
        """Until the processor has applied the whole log and has nothing in flight: whatever it would add is added."""
        assert self.processor is not None
        processor = self.processor

        async def quiet() -> bool:
            await processor.catch_up()
            return not processor.in_flight and processor.head == self.backend.head

        await self.wait_until(quiet, timeout)

    async def terminal_counts(self) -> Counter[str]:
        return Counter(e.args["linkId"] for e in await self.log() if e.name in TERMINAL_EVENTS)

    async def started_counts(self) -> Counter[str]:
        return Counter(e.args["linkId"] for e in await self.log() if e.name == "v1.LinkProcessingStarted")
