"""Faults on a real local Ray cluster; each test reads the truth from the backend's log.

Races, kills, hibernation and rewinds must all end with every link processed
exactly once: one Started per processing request (retries are Resumed) and
one terminal event.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import httpx
import psutil
import pytest
import ray
from ray import serve
from tests.integration.conftest import log_of, outcome_counts, wait_for
from tests.pages import article_ids

from linkproc_ray.adapters.actors import backend_handle, backend_name, processor_handle, processor_name
from linkproc_ray.adapters.batch import cpu_runner
from linkproc_ray.config import NAMESPACE, Settings
from linkproc_ray.errors import ParseTimeout
from linkproc_ray.summarize.extractive import ExtractiveSummarizer
from linkproc_ray.summarize.protocol import Summary, SummaryRequest


def names_for(api: httpx.Client, link_id: str) -> list[str]:
    return [e["name"] for e in log_of(api) if e["args"].get("linkId") == link_id or e["args"].get("id") == link_id]


def terminal(api: httpx.Client, link_id: str) -> bool:
    return api.get(f"/links/{link_id}").json()["processing"]["status"] in {"completed", "failed", "cancelled"}


def kill_processor(org: str) -> None:
    ray.kill(ray.get_actor(processor_name(org), namespace=NAMESPACE), no_restart=False)


def test_killing_the_processor_during_fetch_resumes_the_link_once(api, page_server, org):
    slow = page_server.drip(f"/slow-{org}", interval=0.2, count=20)
    link = api.post("/links", json={"url": slow}).json()
    wait_for(lambda: "v1.LinkProcessingStarted" in names_for(api, link["id"]))
    kill_processor(org)
    wait_for(lambda: terminal(api, link["id"]))
    assert outcome_counts(api, link["id"]) == {"started": 1, "resumed": 1, "terminal": 1}


@serve.deployment(name="SlowSummarizer", ray_actor_options={"num_cpus": 0})
class SlowSummarizer:
    """Test double of a slow model (a GPU model cannot run here): waits, then summarizes for real."""

    async def summarize(self, request: SummaryRequest) -> Summary:
        await asyncio.sleep(2.0)
        return await ExtractiveSummarizer().summarize(request)


@pytest.fixture(scope="module")
def slow_summarizer_app(serve_url: str) -> str:
    serve.run(SlowSummarizer.bind(), name="slowsum", route_prefix=None)
    return "slowsum"


def test_killing_the_processor_during_summarization_resumes_the_link_once(
    api, page_server, org, settings: Settings, slow_summarizer_app
):
    # The org's actors are created first with a slow summarizer; the ingress then finds them.
    custom = settings.model_copy(
        update={"summarizer": "serve", "summarizer_deployment": "SlowSummarizer", "serve_app_name": slow_summarizer_app}
    )
    ray.get(backend_handle(org, custom).stats.remote())
    ray.get(processor_handle(org, custom).stats.remote())
    link = api.post("/links", json={"url": page_server.article_url(article_ids()[6])}).json()
    wait_for(lambda: "v1.LinkMetadataFetched" in names_for(api, link["id"]))
    kill_processor(org)
    wait_for(lambda: terminal(api, link["id"]))
    counts = outcome_counts(api, link["id"])
    assert counts == {"started": 1, "resumed": 1, "terminal": 1}
    assert names_for(api, link["id"]).count("v1.LinkProcessingCompleted") == 1


def test_repeated_kills_during_a_burst_leave_exactly_one_terminal_event_per_link(api, page_server, org):
    urls = [page_server.article_url(page) for page in article_ids()[10:22]]
    ids = [api.post("/links", json={"url": url}).json()["id"] for url in urls]
    for _ in range(3):
        time.sleep(0.7)
        try:
            kill_processor(org)
        except ValueError:
            pass  # the actor was between lives: nothing to kill this time
    for link_id in ids:
        wait_for(lambda link_id=link_id: terminal(api, link_id), timeout=120)
    for link_id in ids:
        counts = outcome_counts(api, link_id)
        assert counts["terminal"] == 1
        assert counts["started"] == 1


def test_killing_the_backend_between_pushes_loses_no_acknowledged_event(api, serve_url, make_token, org):
    acknowledged: list[str] = []
    for round_ in range(3):
        head = api.get("/events").json()["head"]
        batch = [
            {
                "id": f"ev-{round_}-{i}",
                "name": "v1.TagCreated",
                "args": {"id": f"t{round_}{i}", "name": f"n{i}", "createdAt": "t"},
                "clientId": "c",
                "sessionId": "s",
            }
            for i in range(5)
        ]
        response = api.post("/events", json={"parent": head, "events": batch})
        assert response.status_code == 200
        acknowledged += [e["id"] for e in batch]
        ray.kill(ray.get_actor(backend_name(org), namespace=NAMESPACE), no_restart=False)
    stored = [e["id"] for e in log_of(api)]
    assert stored == acknowledged
    other = httpx.Client(base_url=f"{serve_url}/v1/orgs/{org}", headers={"Authorization": f"Bearer {make_token(org)}"})
    assert log_of(other) == log_of(api)


def test_a_rewound_processor_catches_up_in_one_wake(api, org, settings: Settings):
    def tags(start: int, count: int) -> None:
        head = api.get("/events").json()["head"]
        events = [
            {
                "id": f"r-{i}",
                "name": "v1.TagCreated",
                "args": {"id": f"r{i}", "name": f"r{i}", "createdAt": "t"},
                "clientId": "c",
                "sessionId": "s",
            }
            for i in range(start, start + count)
        ]
        assert api.post("/events", json={"parent": head, "events": events}).status_code == 200

    tags(0, 5)
    processor = processor_handle(org, settings)
    wait_for(lambda: ray.get(processor.stats.remote())["head"] == 5)
    path = settings.org_dir(org) / "processor.sqlite"
    ray.kill(processor, no_restart=True)
    backup = _copy_sqlite(path, path.with_suffix(".backup"))
    processor = processor_handle(org, settings)
    tags(5, 30)
    wait_for(lambda: ray.get(processor.stats.remote())["head"] == 35)
    ray.kill(processor, no_restart=True)
    _copy_sqlite(backup, path)

    rewound = processor_handle(org, settings)
    assert ray.get(rewound.catch_up.remote()) == 30
    stats = ray.get(rewound.stats.remote())
    assert stats["head"] == 35
    assert stats["pulled_events"] == 30


def _copy_sqlite(source: Path, target: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{source}{suffix}")
        dst = Path(f"{target}{suffix}")
        if src.exists():
            shutil.copyfile(src, dst)
        elif dst.exists():
            dst.unlink()
    return target


def test_many_concurrent_calls_at_a_cold_processor_open_its_store_once(org, settings: Settings):
    processor = processor_handle(org, settings)
    ray.get([processor.poke.remote() for _ in range(30)] + [processor.stats.remote() for _ in range(30)])
    assert ray.get(processor.stats.remote())["store_opens"] == 1


def test_idle_actors_hibernate_and_wake_from_their_files(api, page_server, org, settings: Settings, metrics_port):
    short = settings.model_copy(update={"idle_ttl": 2.0, "sweep_interval": 1.0})
    # Both live first, with the short TTL: the save below finds them (the ingress
    # would otherwise wake the processor with its own settings alongside the backend).
    backend = backend_handle(org, short)
    ray.get([backend.stats.remote(), processor_handle(org, short).stats.remote()])
    first = api.post("/links", json={"url": page_server.article_url(article_ids()[7])}).json()
    wait_for(lambda: terminal(api, first["id"]))
    pids = {
        ray.get(backend_handle(org, short).stats.remote())["pid"],
        ray.get(processor_handle(org, short).stats.remote())["pid"],
    }
    head_before = api.get("/events").json()["head"]
    log_files = [
        Path(path)
        for handle in (backend_handle(org, short), processor_handle(org, short))
        for path in ray.get(handle.log_files.remote())
    ]
    assert len(log_files) == 4, "each actor's core worker log and event file"

    def both_gone() -> bool:
        return not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids)

    # Generous: on a busy two-core machine eviction checks and process exits can lag.
    wait_for(both_gone, timeout=180)
    for name in (backend_name(org), processor_name(org)):
        with pytest.raises(ValueError):
            ray.get_actor(name, namespace=NAMESPACE)
    assert [path for path in log_files if path.exists()] == [], "a hibernated actor leaves no files for Ray to scan"

    # The next request wakes the backend, and the processor alongside it, with the ingress's settings.
    poked = time.monotonic()
    second = api.post("/links", json={"url": page_server.article_url(article_ids()[8])}).json()
    wait_for(lambda: "v1.LinkProcessingStarted" in names_for(api, second["id"]))
    wake_to_started = time.monotonic() - poked
    wait_for(lambda: terminal(api, second["id"]))
    stats = ray.get(processor_handle(org, settings).stats.remote())
    assert stats["pulled_events"] == stats["head"] - head_before, "a wake fetches only the missing events"
    assert outcome_counts(api, first["id"])["terminal"] == 1
    assert outcome_counts(api, second["id"]) == {"started": 1, "resumed": 0, "terminal": 1}
    print(f"wake: POST to Started of an evicted org took {wake_to_started:.2f} s")

    # Both incarnations of each actor count in one series: the relay records them, not the dead workers.
    def wakes_series() -> list[str]:
        body = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        lines = [line for line in body.splitlines() if line.startswith("ray_linkproc_wakes_total{")]
        return [line for line in lines if f'org="{org}"' in line]

    def counted_twice() -> list[str]:
        series = wakes_series()
        return series if len(series) == 2 and all(line.endswith(" 2.0") for line in series) else []

    series = wait_for(counted_twice, timeout=60, interval=1)
    assert sorted('actor="sync-backend"' in line for line in series) == [False, True]


def test_a_killed_actor_keeps_its_log_files_for_debugging(org, settings: Settings):
    backend = backend_handle(org, settings)
    pid = ray.get(backend.stats.remote())["pid"]
    log_files = [Path(path) for path in ray.get(backend.log_files.remote())]
    assert len(log_files) == 2
    ray.kill(backend, no_restart=True)
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    assert all(path.exists() for path in log_files)


def test_processing_metrics_are_scrapeable_from_ray(api, page_server, org, metrics_port):
    link = api.post("/links", json={"url": page_server.article_url(article_ids()[9])}).json()
    wait_for(lambda: terminal(api, link["id"]))

    def scraped() -> str:
        body = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        return body if f'org="{org}"' in body and "ray_linkproc_links_processed_total" in body else ""

    body = str(wait_for(scraped, timeout=90, interval=2))
    assert "ray_linkproc_stage_seconds" in body
    assert "ray_linkproc_wakes_total" in body


def test_a_parse_task_that_outlives_its_timeout_fails_typed(ray_cluster):
    run = cpu_runner(0.5, "idle")
    started = time.monotonic()
    with pytest.raises(ParseTimeout):
        asyncio.run(run(time.sleep, 30, timeout=0.5))
    assert time.monotonic() - started < 30, "the task itself was interrupted"
