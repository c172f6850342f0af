"""The processor's Ray-side parts: its summarizer (extractive, or a Serve deployment) and the wiring.

Kept apart from :mod:`linkproc_ray.adapters.actors` so that only processor actors load
the fetcher. Parsing runs in batch tasks, by name, so the processor itself never loads
lxml, BeautifulSoup or trafilatura; Ray Serve's client is loaded only when a model
deployment summarizes. The extractive summary (a few milliseconds of pure Python over
at most ``MAX_INPUT_CHARS``) runs in the processor: as a batch task of its own it cost
more in Ray's task overhead than in summarizing, and the processor runs at batch
priority itself.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import ray

from linkproc_ray.adapters.batch import cpu_runner
from linkproc_ray.adapters.metrics import org_metrics
from linkproc_ray.config import Settings
from linkproc_ray.core.store import EventStore
from linkproc_ray.errors import AIError, AITimeout, LinkprocError
from linkproc_ray.pipeline.enricher import Enricher, Lanes
from linkproc_ray.pipeline.fetch import Fetcher, FetchLimits
from linkproc_ray.pipeline.hosts import HostGate
from linkproc_ray.pipeline.ssrf import FetchPolicy
from linkproc_ray.summarize.extractive import ExtractiveSummarizer
from linkproc_ray.summarize.fallback import FallbackSummarizer
from linkproc_ray.summarize.protocol import Summarizer, Summary, SummaryRequest
from linkproc_ray.sync.ports import BackendPort
from linkproc_ray.sync.processor import LinkProcessor, ProcessorSettings


def build_processor(org: str, settings: Settings, backend: BackendPort) -> LinkProcessor:
    """The org's processor core: its replica file, fetcher, parse tasks, summarizer and metrics."""
    s = settings
    record = functools.partial(org_metrics().record, org)
    hosts = HostGate(s.fetch_per_host)
    fetcher = Fetcher(
        FetchPolicy.from_allow_list(s.fetch_allow_hosts),
        FetchLimits(total_timeout=s.fetch_timeout, max_bytes=s.fetch_max_bytes, max_redirects=s.fetch_max_redirects),
        hosts=hosts,
    )
    run_cpu = cpu_runner(s.parse_num_cpus, s.parse_priority)
    enricher = Enricher(
        fetcher,
        summarizer_for(s, on_fallback=lambda code: record("fallback", {"error": code})),
        run_cpu=run_cpu,
        lanes=Lanes(fetch=s.fetch_concurrency, summarize=s.summarize_concurrency),
        hosts=hosts,
    )
    return LinkProcessor(
        EventStore(s.org_dir(org) / "processor.sqlite", keep_log=False, durable=False, exclusive=True),
        backend,
        enricher,
        client_id=f"link-processor:{org}",
        settings=ProcessorSettings(max_attempts=s.max_attempts, sweep_interval=s.sweep_interval),
        on_event=record,
    )


class ServeSummarizer:
    """A summarizer Serve deployment (a model) behind the core :class:`Summarizer` protocol."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model = f"serve:{settings.summarizer_deployment}"
        self._handle: Any = None

    async def summarize(self, request: SummaryRequest) -> Summary:
        if self._handle is None:
            from ray import serve  # only processors that call a model deployment load Serve's client

            self._handle = serve.get_deployment_handle(
                self.settings.summarizer_deployment, app_name=self.settings.serve_app_name
            )
        try:
            result: Summary = await asyncio.wait_for(
                self._handle.summarize.remote(request), self.settings.summarizer_timeout
            )
        except TimeoutError:
            raise AITimeout(f"no summary within {self.settings.summarizer_timeout:.0f} s") from None
        except LinkprocError:
            raise
        except ray.exceptions.RayError as exc:
            raise AIError(f"summarizer deployment failed: {exc}") from exc
        return result


def summarizer_for(settings: Settings, *, on_fallback: Callable[[str], None] | None = None) -> Summarizer:
    """The processor's summarizer: extractive, or a model deployment with the extractive fallback."""
    extractive = ExtractiveSummarizer()
    if settings.summarizer == "extractive":
        return extractive
    return FallbackSummarizer(
        ServeSummarizer(settings), extractive, timeout=settings.summarizer_timeout, on_fallback=on_fallback
    )
