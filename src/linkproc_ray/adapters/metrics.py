"""Ray adapter for the processor's and backend's metrics (exported by Ray's metrics agent).

The core reports what happened through a plain ``on_event(kind, data)``
callback; this module turns those reports into ``ray.util.metrics`` series,
which every node's metrics agent serves to Prometheus.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ray.util import metrics

from linkproc_ray.core.types import JSON

_STAGE_BOUNDARIES = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]


class OrgMetrics:
    """The series of one process; every sample is tagged with its org."""

    def __init__(self) -> None:
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
            self.pending.set(data["pending"], tags)
        elif kind == "fallback":
            self.fallbacks.inc(1, {**tags, "error": data["error"]})
        elif kind in ("evicted", "woke"):
            series = self.evictions if kind == "evicted" else self.wakes
            series.inc(1, {**tags, "actor": data["actor"]})


@cache
def org_metrics() -> OrgMetrics:
    """One set of series per process (Ray registers each name once)."""
    return OrgMetrics()
