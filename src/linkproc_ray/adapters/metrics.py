"""Ray adapter for the processor's and backend's metrics: one long-lived actor owns every series.

The core reports what happened through a plain ``on_event(kind, data)``
callback. Org actors do not record Ray metrics themselves: Ray tags every
series with the worker that recorded it, and a node's metrics agent keeps a
dead worker's counters for as long as it runs, so each wake (two new actor
processes) left about seven series behind, forever: 6,535 series after 581
wakes in ``benchmarks/churn.py``, and every Prometheus scrape carries them
all. Instead each org actor buffers its reports and sends them, every few
seconds and before it hibernates, to ``linkproc-metrics``, a named detached
actor whose series are tagged with the one worker it runs on. The series
then grow with orgs, not with wakes. Metrics are best effort: a report that
cannot be delivered is dropped, never an org's work.
"""

from __future__ import annotations

import asyncio
import logging
from functools import cache
from typing import Any

import ray

from linkproc_ray.config import NAMESPACE
from linkproc_ray.core.types import JSON

log = logging.getLogger(__name__)

RELAY_NAME = "linkproc-metrics"
FLUSH_INTERVAL = 10.0
"""Seconds an org actor holds its reports before sending them (a fraction of Prometheus's usual 15 s scrape)."""

Report = tuple[str, str, JSON]
"""``(org, kind, data)``: one core report."""

_STAGE_BOUNDARIES = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]


class OrgMetrics:
    """The series, in the relay's process; every sample is tagged with its org."""

    def __init__(self) -> None:
        from ray.util import metrics

        self.links = metrics.Counter(
            "linkproc_links_processed", "Links that reached a terminal event, by outcome", tag_keys=("org", "outcome")
        )
        self.stage_seconds = metrics.Histogram(
            "linkproc_stage_seconds",
            "Seconds per pipeline stage",
            boundaries=_STAGE_BOUNDARIES,
            tag_keys=("org", "stage"),
        )
        self.in_flight = metrics.Gauge("linkproc_links_in_flight", "Links being processed", tag_keys=("org",))
        self.pending = metrics.Gauge("linkproc_links_pending", "Links waiting for the processor", tag_keys=("org",))
        self.events_pushed = metrics.Counter(
            "linkproc_processor_events_pushed", "Events pushed by processors", tag_keys=("org",)
        )
        self.events_pulled = metrics.Counter(
            "linkproc_processor_events_pulled", "Events applied by processors", tag_keys=("org",)
        )
        self.evictions = metrics.Counter(
            "linkproc_evictions", "Idle org actors that hibernated", tag_keys=("org", "actor")
        )
        self.wakes = metrics.Counter(
            "linkproc_wakes", "Org actors (re)created from their files", tag_keys=("org", "actor")
        )
        self.fallbacks = metrics.Counter(
            "linkproc_summarizer_fallbacks", "Summaries made by the fallback", tag_keys=("org", "error")
        )
        self.session_restarts = metrics.Counter(
            "linkproc_processor_session_restarts", "Processor sessions restarted after a failure", tag_keys=("org",)
        )

    def record(self, org: str, kind: str, data: JSON) -> None:
        """Map one core report to its series."""
        tags: dict[str, Any] = {"org": org}
        if kind == "outcome":
            self.links.inc(1, {**tags, "outcome": data["outcome"]})
        elif kind == "stage":
            self.stage_seconds.observe(data["seconds"], {**tags, "stage": data["stage"]})
        elif kind == "pushed":
            self.events_pushed.inc(data["count"], tags)
        elif kind == "pulled":
            self.events_pulled.inc(data["count"], tags)
        elif kind == "session_restart":
            self.session_restarts.inc(1, tags)
        elif kind == "work":
            self.in_flight.set(data["in_flight"], tags)
            if "pending" in data:
                self.pending.set(data["pending"], tags)
        elif kind == "fallback":
            self.fallbacks.inc(1, {**tags, "error": data["error"]})
        elif kind in ("evicted", "woke"):
            series = self.evictions if kind == "evicted" else self.wakes
            series.inc(1, {**tags, "actor": data["actor"]})


@ray.remote(num_cpus=0)
class MetricsRelayActor:
    """``linkproc-metrics``: records the org actors' reports into series it owns."""

    def __init__(self) -> None:
        self.series = OrgMetrics()
        self.reports = 0

    def record(self, reports: list[Report]) -> int:
        for org, kind, data in reports:
            self.series.record(org, kind, data)
        self.reports += len(reports)
        return self.reports


@cache
def relay_handle() -> Any:
    """The relay actor, created where it is missing (restarted forever, like the org actors); one lookup per process."""
    return MetricsRelayActor.options(  # type: ignore[attr-defined]
        name=RELAY_NAME,
        namespace=NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
        enable_task_events=False,
    ).remote()


class BufferedMetrics:
    """An org actor's side: reports wait in a buffer and leave for the relay together."""

    def __init__(self, interval: float = FLUSH_INTERVAL) -> None:
        self.interval = interval
        self._buffer: list[Report] = []
        self._flusher: asyncio.Task[None] | None = None
        self.dropped = 0

    def record(self, org: str, kind: str, data: JSON) -> None:
        """Keep one report for the next flush."""
        self._buffer.append((org, kind, data))

    def start(self) -> None:
        """Flush every interval from now on (called on the actor's event loop, once it runs)."""
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_every_interval())

    async def flush(self) -> None:
        """Send what is buffered; on failure the reports are dropped (metrics never hold up an org)."""
        reports, self._buffer = self._buffer, []
        if not reports:
            return
        try:
            await relay_handle().record.remote(reports)
        except Exception:  # any Ray failure: the relay is restarting or unreachable
            relay_handle.cache_clear()
            self.dropped += len(reports)
            log.warning("metrics relay unavailable: %d reports dropped", len(reports), exc_info=True)

    async def _flush_every_interval(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()


@cache
def org_metrics() -> BufferedMetrics:
    """One buffer per org actor process."""
    return BufferedMetrics()
