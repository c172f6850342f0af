"""Prometheus metrics of this process, rendered by the ingress at ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    """One registry per process, so tests and several apps never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events_pushed = Counter(
            "linkproc_events_pushed", "Events accepted through the ingress", registry=self.registry
        )
        self.events_pulled = Counter(
            "linkproc_events_pulled", "Events served to pulls and sockets", registry=self.registry
        )

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


METRICS = Metrics()
