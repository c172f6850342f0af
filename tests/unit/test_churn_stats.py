"""The churn benchmark's arithmetic (benchmarks/churn.py): matching wakes to actors, deciles, growth verdicts."""

from __future__ import annotations

from benchmarks.churn import (
    MIB,
    Wake,
    cpu_share_by_third,
    creation_ms,
    deciles,
    flags,
    gcs_debug_counts,
    per_entry_bytes,
    per_wake_bytes_past_bounds,
)


def test_each_wake_is_matched_with_the_first_actors_that_started_after_its_save():
    wakes = [Wake("acme", 0, sent_epoch=100.0), Wake("acme", 1, sent_epoch=200.0)]
    started_ms = {"sync-backend:acme": {101_000, 200_500}, "link-processor:acme": {102_500, 201_000}}
    times, reused = creation_ms(wakes, started_ms)
    assert times == {"backend": [1000.0, 500.0], "processor": [1500.0, 500.0]}
    assert reused == 0


def test_a_wake_that_found_its_actors_alive_is_counted():
    wakes = [Wake("acme", 0, sent_epoch=100.0), Wake("acme", 1, sent_epoch=105.0)]
    times, reused = creation_ms(wakes, {"sync-backend:acme": {101_000}, "link-processor:acme": {102_000}})
    assert reused == 1
    assert times["backend"] == [1000.0]


def test_deciles_follow_the_order_wakes_ended_in():
    wakes = [Wake("o", i, wake_ms=float(1000 + i), terminal_at=float(i)) for i in range(100)]
    result = deciles(wakes)
    assert result["first_decile"] == {"p50": 1004.5, "p99": 1008.9, "n": 10}
    assert result["last_decile"]["p50"] == 1094.5
    assert result["all"]["n"] == 100


def sample(
    entries: int, gcs_mib: float, raylet_mib: float = 30.0, agent_mib: float = 120.0, function_kb: float = 230.0
) -> dict[str, float]:
    return {
        "actor_entries": entries,
        "dead_actor_entries": entries,
        "gcs_rss_mb": gcs_mib,
        "raylet_rss_mb": raylet_mib,
        "agent_rss_mb": agent_mib,
        "metric_series": 3000,
        "function_table_kb": function_kb,
    }


def test_gcs_bytes_per_entry_is_the_slope_past_warm_up():
    # Start-up noise first, then exactly 2 KiB per entry.
    samples = [sample(0, 40.0), sample(10, 48.0), sample(20, 49.0)] + [
        sample(100 * k, 50.0 + 100 * k * 2048 / MIB) for k in range(1, 10)
    ]
    assert per_entry_bytes(samples, cache_limit=100_000) == 2048.0
    assert per_entry_bytes([sample(5, 40.0)] * 6, cache_limit=100_000) is None  # no change in entries: no slope


def test_gcs_growth_past_the_cache_bound_is_not_charged_to_the_entries():
    rising = [sample(100 * k, 50.0 + 100 * k * 1024 / MIB) for k in range(10)]
    capped = [sample(900, 60.0 + k) for k in range(10)]  # the bound holds the entries; something else grows
    assert per_entry_bytes(rising + capped, cache_limit=900) == 1024.0


def test_entries_below_the_cache_bound_are_growth_by_design_and_say_so():
    samples = [sample(200 * k, 50.0) for k in range(12)]
    wakes = [Wake("o", i, wake_ms=2000.0, terminal_at=float(i)) for i in range(120)]
    verdict = flags(samples, wakes, cache_limit=100_000)
    assert verdict["actor_entries"]["flagged"] is True
    assert verdict["actor_entries"]["below_bound"] is True
    assert verdict["gcs_rss_mb"]["flagged"] is False
    assert verdict["wake_ms_p50"]["flagged"] is False


def test_wakes_getting_slower_at_the_end_are_flagged():
    wakes = [Wake("o", i, wake_ms=2000.0 + (3000.0 if i > 80 else 0.0), terminal_at=float(i)) for i in range(120)]
    verdict = flags([sample(k, 50.0) for k in range(12)], wakes, cache_limit=100_000)
    assert verdict["wake_ms_p50"]["flagged"] is True


def test_an_agent_that_keeps_growing_is_flagged_like_the_gcs():
    wakes = [Wake("o", i, wake_ms=2000.0, terminal_at=float(i)) for i in range(120)]
    verdict = flags([sample(k, 50.0, agent_mib=120.0 + 10 * k) for k in range(12)], wakes, cache_limit=100_000)
    assert verdict["agent_rss_mb"]["flagged"] is True
    assert verdict["metric_series"]["flagged"] is False


def test_a_function_table_that_gains_a_class_per_wake_is_flagged() -> None:
    wakes = [Wake("o", i, wake_ms=2000.0, terminal_at=float(i)) for i in range(120)]
    stored_again = flags([sample(k, 50.0, function_kb=230.0 + 19.6 * 10 * k) for k in range(12)], wakes, 100_000)
    assert stored_again["function_table_kb"]["flagged"] is True
    stored_once = flags([sample(k, 50.0) for k in range(12)], wakes, cache_limit=100_000)
    assert stored_once["function_table_kb"]["flagged"] is False


def test_a_sample_whose_metrics_endpoint_did_not_answer_is_left_out_of_the_series_verdict():
    wakes = [Wake("o", i, wake_ms=2000.0, terminal_at=float(i)) for i in range(120)]
    samples = [sample(k, 50.0) for k in range(12)]
    samples[0]["metric_series"] = None  # type: ignore[assignment]
    verdict = flags(samples, wakes, cache_limit=100_000)
    assert verdict["metric_series"]["flagged"] is False
    assert verdict["metric_series"]["middle"] == 3000


def test_what_each_wake_still_adds_at_the_bound_is_fitted_against_wakes():
    at_bound = [{**sample(1000, 80.0 + k * 100 * 4096 / MIB), "wakes": 500 + 100 * k} for k in range(5)]
    assert per_wake_bytes_past_bounds(at_bound, cache_limit=1000) == 4096.0
    assert per_wake_bytes_past_bounds([sample(10, 50.0)] * 5, cache_limit=1000) is None  # never at the bound


def test_the_heap_part_of_the_growth_is_fitted_on_its_own_series():
    at_bound = [
        {
            **sample(1000, 80.0 + k * 100 * 4096 / MIB),
            "gcs_anon_mb": 60.0 + k * 100 * 1024 / MIB,
            "wakes": 500 + 100 * k,
        }
        for k in range(5)
    ]
    assert per_wake_bytes_past_bounds(at_bound, cache_limit=1000, series="gcs_anon_mb") == 1024.0
    # A run from before the series existed has no heap figure rather than a wrong one.
    assert per_wake_bytes_past_bounds([sample(1000, 80.0)] * 5, cache_limit=1000, series="gcs_anon_mb") is None


GCS_DUMP = """[2026-12-03 11:06:15,123 I 1 1] (gcs_server) gcs_server.cc:1307: Gcs Debug state:

GcsActorManager:
- Registered actors count: 26
- Destroyed actors count: {destroyed}

Publisher:
- current long-polling subscribers: {subscribers}
GCS_NODE_INFO_CHANNEL
- current buffered bytes: 0
- current keyed subscription keys: 0
GCS_ACTOR_CHANNEL
- cumulative published bytes: 171368
- current buffered bytes: {buffered}
- current all-entity subscribers: 0
- current keyed subscription keys: {keys}

GcsTaskManager:
-Current num of task events stored: {tasks}
"""


def test_the_gcs_debug_dumps_name_what_the_gcs_holds_per_channel():
    text = "noise\n" + "".join(
        GCS_DUMP.format(destroyed=d, subscribers=3 * d, buffered=500 * d, keys=d // 2, tasks=2 * d)
        for d in (0, 100, 1000)
    )
    counts = gcs_debug_counts(text)
    assert len(counts) == 3
    # The actor channel's keys, not the node channel's zero that comes first.
    assert counts[-1] == {
        "destroyed_actors": 1000,
        "long_polling_subscribers": 3000,
        "actor_channel_keys": 500,
        "actor_channel_buffered_bytes": 500_000,
        "task_events_stored": 2000,
    }
    assert gcs_debug_counts("a log with no dump") == []


def test_a_helpers_cpu_share_is_measured_in_each_third_of_the_run():
    def used(t: int) -> float:  # 5 %, then 10 %, then 20 % of a core
        return 0.05 * t if t <= 3 else 0.15 + 0.1 * (t - 3) if t <= 6 else 0.45 + 0.2 * (t - 6)

    samples = [{"t": float(t), "agent_cpu_s": used(t)} for t in range(10)]
    share = cpu_share_by_third(samples, "agent_cpu_s")
    assert share == {"first": 0.05, "middle": 0.1, "last": 0.2}


def test_too_short_a_run_has_no_cpu_shares():
    assert cpu_share_by_third([{"t": 0.0, "agent_cpu_s": 0.0}], "agent_cpu_s") == {
        "first": None,
        "middle": None,
        "last": None,
    }
