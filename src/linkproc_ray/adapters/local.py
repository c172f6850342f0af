"""A whole system on this machine: a local Ray cluster with the Serve app, for ``linkproc up``."""

from __future__ import annotations

import logging
import os

import ray
from ray import serve

from linkproc_ray.adapters.serve import build_app
from linkproc_ray.config import NAMESPACE, Settings


def start_local(settings: Settings, *, host: str, port: int, num_cpus: int | None, metrics_port: int) -> None:
    """Start Ray in this process and serve the app at ``http://host:port``; returns once it answers."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        address="local",
        namespace=NAMESPACE,
        num_cpus=num_cpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
        _metrics_export_port=metrics_port,
    )
    serve.start(http_options={"host": host, "port": port}, logging_config={"enable_access_log": False})
    serve.run(build_app(), name=settings.serve_app_name, route_prefix="/")


def stop_local() -> None:
    """Shut Serve and Ray down."""
    serve.shutdown()  # type: ignore[no-untyped-call]
    ray.shutdown()
