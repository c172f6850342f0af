"""A whole system on this machine: a local Ray cluster with the Serve app, for ``linkproc up``."""

from __future__ import annotations

import logging
import os
from typing import Any

import ray
from ray import serve

from linkproc_ray.adapters.front_door import local_front_door, ray_environment
from linkproc_ray.adapters.serve import build_app
from linkproc_ray.config import NAMESPACE, Settings

GCS_CHURN_BOUNDS: dict[str, int] = {
    # Every wake makes two named actors and every hibernation leaves two dead ones,
    # which the GCS keeps for `ray list actors`: benchmarks/churn.py measured about
    # 30 KB of GCS memory per dead entry, so Ray's default of 100,000 would let the
    # GCS grow by about 3 GB. The last 1,000 (500 hibernations) are enough to debug with.
    "maximum_gcs_destroyed_actor_cached_count": 1_000,
}
"""What keeps the GCS from growing with wake/hibernate churn; ``cluster/*.yaml`` and
``k8s/rayservice.yaml`` set the same as ``RAY_<name>`` on the head, where the GCS runs.

Dead workers' subscriber state also grows with churn, one per exited actor worker,
but Ray bounds it: its publisher drops a subscriber 300-900 s after it stopped
polling (``subscriber_timeout_ms``, 300 s by default), so at 1.8 exits a second it
saw-toothed between about 1,000 and 1,500 here. ``subscriber_timeout_ms=30000``
would hold it near 120, but the integration suite on RAY_SYSTEM_CONFIG and that
timeout failed the web page's keyboard reprocess test twice in a row (it passes
alone), so it stays at Ray's default until that is understood."""

RAY_SYSTEM_CONFIG: dict[str, Any] = {
    # Ray kills idle workers above its soft limit (one per CPU) after 1 s; a burst's
    # parse workers then start again, and each pays the parser's imports anew.
    "idle_worker_killing_time_threshold_ms": 60_000,
    **GCS_CHURN_BOUNDS,
}
"""Ray settings of a local cluster."""


def start_local(settings: Settings, *, host: str, port: int, num_cpus: int | None, metrics_port: int) -> None:
    """Start Ray in this process and serve the app at ``http://host:port``; returns once it answers."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with ray_environment(local_front_door()):
        ray.init(
            address="local",
            namespace=NAMESPACE,
            num_cpus=num_cpus,
            include_dashboard=False,
            logging_level=logging.WARNING,
            _metrics_export_port=metrics_port,
            _system_config=RAY_SYSTEM_CONFIG,
        )
    serve.start(http_options={"host": host, "port": port}, logging_config={"enable_access_log": False})
    serve.run(build_app(), name=settings.serve_app_name, route_prefix="/")


def stop_local() -> None:
    """Shut Serve and Ray down."""
    serve.shutdown()  # type: ignore[no-untyped-call]
    ray.shutdown()
