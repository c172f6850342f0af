"""The processor's Ray-side parts: parse tasks, the Serve summarizer client, and the wiring.

Kept apart from :mod:`linkproc_ray.adapters.actors` so that only processor actors load
the pipeline (lxml, trafilatura, the Serve client).
"""

from __future__ import annotations

import asyncio
import functools
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import ray
from ray import serve

from linkproc_ray.adapters.metrics import org_metrics
from linkproc_ray.config import Settings
from linkproc_ray.core.store import EventStore
from linkproc_ray.errors import AIError, AITimeout, LinkprocError, ParseTimeout
from linkproc_ray.pipeline.enricher import Enricher, Lanes
from linkproc_ray.pipeline.fetch import Fetcher, FetchLimits
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
    fetcher = Fetcher(
        FetchPolicy.from_allow_list(s.fetch_allow_hosts),
        FetchLimits(total_timeout=s.fetch_timeout, max_bytes=s.fetch_max_bytes, max_redirects=s.fetch_max_redirects),
    )
    enricher = Enricher(
        fetcher,
        summarizer_for(s, on_fallback=lambda code: record("fallback", {"error": code})),
        run_cpu=cpu_runner(s.parse_num_cpus),
        lanes=Lanes(fetch=s.fetch_concurrency, summarize=s.summarize_concurrency),
    )
    return LinkProcessor(
        EventStore(s.org_dir(org) / "processor.sqlite", keep_log=False),
        backend,
        enricher,
        client_id=f"link-processor:{org}",
        settings=ProcessorSettings(max_attempts=s.max_attempts, sweep_interval=s.sweep_interval),
        on_event=record,
    )


@ray.remote(max_retries=1)
def _run_cpu_task(fn: Callable[..., Any], timeout: float, *args: Any) -> Any:
    # The clock starts when the task runs, not while it waits for a CPU: an
    # interval timer interrupts the function itself (tasks run on the worker's
    # main thread, where Python delivers signals).
    def expire(signum: int, frame: object) -> None:
        raise ParseTimeout(f"{getattr(fn, '__name__', 'step')} took longer than {timeout:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def cpu_runner(num_cpus: float) -> Callable[..., Awaitable[Any]]:
    """Run CPU-heavy steps as stateless Ray tasks spread over the cluster's CPUs."""

    async def run(fn: Callable[..., Any], *args: Any, timeout: float) -> Any:
        ref = _run_cpu_task.options(num_cpus=num_cpus).remote(fn, timeout, *args)
        try:
            return await ref
        except asyncio.CancelledError:
            ray.cancel(ref, force=True)
            raise

    return run


class ServeSummarizer:
    """The summarizer Serve deployment behind the core :class:`Summarizer` protocol."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model = f"serve:{settings.summarizer_deployment}"
        self._handle: Any = None

    async def summarize(self, request: SummaryRequest) -> Summary:
        if self._handle is None:
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
    """The processor's summarizer: the Serve deployment, with the extractive fallback for models."""
    remote = ServeSummarizer(settings)
    if settings.summarizer == "extractive":
        return remote
    return FallbackSummarizer(
        remote, ExtractiveSummarizer(), timeout=settings.summarizer_timeout, on_fallback=on_fallback
    )
