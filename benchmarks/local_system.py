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
    worker_nodes: int = 0,
    worker_memory_mib: int | None = None,
) -> Iterator[str]:
    """Start Ray and the app with the settings ``overrides``; yields the app's base URL.

    :param ray_config: Ray system settings over the project's ``RAY_SYSTEM_CONFIG``.
    :param worker_nodes: 0 for one node, as ``linkproc up`` runs it. More for a
        small cluster on this machine (``ray.cluster_utils.Cluster``) shaped like
        the cloud one: a head without CPUs, and that many raylets sharing the cores.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    from linkproc_ray.adapters.front_door import local_front_door, ray_environment
    from linkproc_ray.adapters.local import RAY_SYSTEM_CONFIG
    from linkproc_ray.adapters.serve import build_app
    from linkproc_ray.config import NAMESPACE

    system_config = {**RAY_SYSTEM_CONFIG, **(ray_config or {})}
    cluster: Cluster | None = None
    with ray_environment(local_front_door()):
        if worker_nodes:
            cluster = Cluster(
                initialize_head=True,
                head_node_args={"num_cpus": 0, "include_dashboard": False, "_system_config": system_config},
            )
            for _ in range(worker_nodes):
                memory = {"memory": worker_memory_mib * 2**20} if worker_memory_mib else {}
                cluster.add_node(num_cpus=max(1, (os.cpu_count() or 1) // worker_nodes), **memory)
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, namespace=NAMESPACE, logging_level=logging.WARNING, log_to_driver=False)
        else:
            ray.init(
                address="local",
                namespace=NAMESPACE,
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=False,
                _system_config=system_config,
            )
    try:
        port = port or free_port()
        # One proxy: the raylets of a local cluster share this machine's ports.
        proxies = {"proxy_location": "HeadOnly"} if worker_nodes else {}
        serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config=QUIET, **proxies)
        serve.run(build_app(overrides), name=app_name, route_prefix=route_prefix, logging_config=QUIET)
        yield f"http://127.0.0.1:{port}{route_prefix.rstrip('/')}"
    finally:
        serve.shutdown()
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
