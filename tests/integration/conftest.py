"""One local Ray cluster and one Serve app for the whole session, plus a loopback page server.

Start-up (Ray, Serve, the app) costs most of the suite's time on two cores,
so every integration test shares it; tests use their own org ids.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.pages import PageServer

from linkproc_ray.api.auth import issue_token
from linkproc_ray.config import NAMESPACE, Settings
from linkproc_ray.core.events import TERMINAL_EVENTS

JWT_SECRET = "integration-secret-long-enough-for-hs256-signing"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def page_server() -> Iterator[PageServer]:
    with PageServer() as server:
        yield server


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("linkproc-data")


@pytest.fixture(scope="session")
def app_settings(data_dir: Path, page_server: PageServer) -> dict[str, object]:
    """Settings of the session's app: loopback pages allowed, fast sweeps."""
    return {
        "data_dir": str(data_dir),
        "jwt_secret": JWT_SECRET,
        "fetch_allow_hosts": page_server.host_port,
        "sweep_interval": 2.0,
        "fetch_timeout": 10.0,
    }


@pytest.fixture(scope="session")
def metrics_port() -> int:
    """Where this node's Ray metrics agent serves Prometheus text."""
    return free_port()


@pytest.fixture(scope="session")
def ray_cluster(metrics_port: int) -> Iterator[None]:
    import ray

    from linkproc_ray.adapters.front_door import local_front_door, ray_environment

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    # The front door `linkproc up` gets: HAProxy where Ray ships it.
    with ray_environment(local_front_door()):
        ray.init(
            address="local",
            num_cpus=4,
            namespace=NAMESPACE,
            include_dashboard=False,
            logging_level="WARNING",
            log_to_driver=False,
            _metrics_export_port=metrics_port,
        )
    yield
    from ray import serve

    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def serve_url(ray_cluster: None, app_settings: dict[str, object]) -> str:
    from ray import serve

    from linkproc_ray.adapters.serve import build_app

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config={"enable_access_log": False})
    serve.run(build_app(dict(app_settings)), name="linkproc", route_prefix="/")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the Serve app did not become healthy within 60 s")


@pytest.fixture(scope="session")
def settings(app_settings: dict[str, object]) -> Settings:
    return Settings(**app_settings)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def make_token(settings: Settings) -> Callable[..., str]:
    def make(org: str, ttl: float = 3600, sub: str = "tester") -> str:
        return issue_token(settings, org, sub=sub, ttl=ttl)

    return make


@pytest.fixture
def org(request: pytest.FixtureRequest) -> str:
    """A fresh org id per test, so tests never see each other's links."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")
    return f"t{int(time.time() * 1000) % 10_000_000}-{name}"[:64]


@pytest.fixture
def api(serve_url: str, make_token: Callable[..., str], org: str) -> Iterator[httpx.Client]:
    """An HTTP client authenticated for this test's org, rooted at ``/v1/orgs/<org>``."""
    with httpx.Client(
        base_url=f"{serve_url}/v1/orgs/{org}", headers={"Authorization": f"Bearer {make_token(org)}"}, timeout=30
    ) as client:
        yield client


def wait_for(check: Callable[[], object], timeout: float = 60.0, interval: float = 0.25) -> object:
    """Poll ``check`` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s (last value {value!r})")
        time.sleep(interval)
        value = check()
    return value


def log_of(client: httpx.Client) -> list[dict[str, object]]:
    """The org's whole log, read from the backend."""
    events: list[dict[str, object]] = []
    while True:
        body = client.get("/events", params={"after": len(events), "limit": 10_000}).json()
        events.extend(body["events"])
        if len(events) >= body["head"]:
            return events


TERMINAL = TERMINAL_EVENTS


def outcome_counts(client: httpx.Client, link_id: str) -> dict[str, int]:
    """How many Started, Resumed and terminal events the log holds for one link."""
    counts = {"started": 0, "resumed": 0, "terminal": 0}
    for event in log_of(client):
        args = event["args"]
        assert isinstance(args, dict)
        if args.get("linkId") != link_id:
            continue
        if event["name"] == "v1.LinkProcessingStarted":
            counts["started"] += 1
        elif event["name"] == "v1.LinkProcessingResumed":
            counts["resumed"] += 1
        elif event["name"] in TERMINAL:
            counts["terminal"] += 1
    return counts
