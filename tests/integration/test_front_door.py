"""The suite's HTTP port is served as `linkproc up` serves it: by HAProxy, straight to the ingress replica.

Every other integration test then runs through HAProxy: saves, pulls, the
WebSocket, the web page and the ingress's replacement.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import psutil
import ray

DIRECT_INGRESS_PORTS = range(30000, 31001)
"""Where Serve's ingress replicas serve HTTP (RAY_SERVE_DIRECT_INGRESS_MIN/MAX_HTTP_PORT)."""


def listeners(process: psutil.Process) -> set[tuple[str, int]]:
    return {(c.laddr.ip, c.laddr.port) for c in process.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}


def test_the_http_port_is_haproxys(serve_url: str) -> None:
    port = urlsplit(serve_url).port
    owners = {
        psutil.Process(c.pid).name()
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.pid is not None
    }
    assert owners == {"haproxy"}


def test_the_ingress_replica_serves_http_itself_on_the_interface_asked_for(serve_url: str, api) -> None:
    assert api.get("/links").status_code == 200
    # The GCS's actor table: this cluster's replicas, with no dashboard needed.
    replicas = [
        actor["Pid"]
        for actor in ray._private.state.actors().values()
        if actor["ActorClassName"] == "ServeReplica:linkproc:Ingress" and actor["State"] == "ALIVE"
    ]
    assert replicas
    for pid in replicas:
        # Ray's own servers in the process (the worker's gRPC) listen elsewhere; HTTP is in Serve's range.
        http = {(ip, port) for ip, port in listeners(psutil.Process(pid)) if port in DIRECT_INGRESS_PORTS}
        assert http  # direct ingress: the replica listens, HAProxy forwards to it
        assert {ip for ip, _ in http} == {urlsplit(serve_url).hostname}, http  # loopback, as `--host` asked
