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
    # which the GCS keeps for `ray list actors`: benchmarks/churn.py measured 18-52 KB
    # of GCS memory per dead entry, so Ray's default of 100,000 would let the GCS grow
    # by 1.7-5 GB. The last 1,000 (500 hibernations) are enough to debug with.
    "maximum_gcs_destroyed_actor_cached_count": 1_000,
    # The GCS stores about two task events per wake (2,007 after churn-quick's 1,000) and
    # each held about 3.4 KB (benchmarks/results/churn-diagnosis/task-events.json), so
    # Ray's cap of 100,000 would hold about 330 MiB; the last 10,000 hold about 33.
    "task_events_max_num_task_in_gcs": 10_000,
    # A dead worker's subscriber state stays until the publisher times it out, at 300 s
    # by default: at 1.8 exits a second that kept 1,000-1,500 of them; at 30 s, 89 (churn-quick).
    "subscriber_timeout_ms": 30_000,
}
"""What keeps the GCS from growing with wake/hibernate churn; ``cluster/*.yaml`` and
``k8s/rayservice.yaml`` set the same as ``RAY_<name>`` on the head, where the GCS runs."""

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
