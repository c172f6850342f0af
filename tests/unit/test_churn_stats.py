"""The churn benchmark's arithmetic (benchmarks/churn.py): matching wakes to actors, deciles, growth verdicts."""

from __future__ import annotations

from benchmarks.churn import MIB, Wake, creation_ms, deciles, flags, per_entry_bytes, per_wake_bytes_past_bounds


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


def sample(entries: int, gcs_mib: float, raylet_mib: float = 30.0) -> dict[str, float]:
    return {"actor_entries": entries, "dead_actor_entries": entries, "gcs_rss_mb": gcs_mib, "raylet_rss_mb": raylet_mib}


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


def test_what_each_wake_still_adds_at_the_bound_is_fitted_against_wakes():
    at_bound = [{**sample(1000, 80.0 + k * 100 * 4096 / MIB), "wakes": 500 + 100 * k} for k in range(5)]
    assert per_wake_bytes_past_bounds(at_bound, cache_limit=1000) == 4096.0
    assert per_wake_bytes_past_bounds([sample(10, 50.0)] * 5, cache_limit=1000) is None  # never at the bound
