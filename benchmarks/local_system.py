"""What ``linkproc up`` starts, for the benchmarks that drive the whole system over HTTP.

A local Ray cluster with the project's Ray settings and the Serve app on
loopback; shut down on exit. One place, so that every such benchmark
measures the system users run.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

QUIET = {"enable_access_log": False, "log_level": "WARNING"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_system(
    overrides: dict[str, Any],
    *,
    app_name: str,
    route_prefix: str = "/",
    port: int | None = None,
    ray_config: dict[str, Any] | None = None,
) -> Iterator[str]:
    """Start Ray and the app with the settings ``overrides``; yields the app's base URL.

    :param ray_config: Ray system settings over the project's ``RAY_SYSTEM_CONFIG``.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray import serve

    from linkproc_ray.adapters.local import RAY_SYSTEM_CONFIG
    from linkproc_ray.adapters.serve import build_app
    from linkproc_ray.config import NAMESPACE

    ray.init(
        address="local",
        namespace=NAMESPACE,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
        _system_config={**RAY_SYSTEM_CONFIG, **(ray_config or {})},
    )
    try:
        port = port or free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config=QUIET)
        serve.run(build_app(overrides), name=app_name, route_prefix=route_prefix, logging_config=QUIET)
        yield f"http://127.0.0.1:{port}{route_prefix.rstrip('/')}"
    finally:
        serve.shutdown()
        ray.shutdown()
