"""The task-event probe's arithmetic (benchmarks/task_events_probe.py): what one stored event costs the GCS."""

from __future__ import annotations

from typing import Any

from benchmarks.task_events_probe import bytes_per_stored_event


def run(cap: int, tasks: int, stored: int | None, bytes_per_task: float | None) -> dict[str, Any]:
    return {"cap": cap, "tasks": tasks, "task_events_stored": stored, "gcs_bytes_per_task": bytes_per_task}


def test_the_cost_of_an_event_is_the_slope_difference_over_the_difference_in_events_kept():
    # Both runs did 40,000 tasks; the large cap kept all of them, the small one 100.
    small = run(100, 40_000, 100, 96.0)
    large = run(100_000, 40_000, 40_000, 3_568.0)
    # (3,568 - 96) bytes more per task, for 39,900 / 40,000 more events kept per task.
    assert bytes_per_stored_event(small, large) == 3_480.7


def test_a_large_cap_that_kept_only_part_of_the_tasks_charges_each_kept_event_more():
    small = run(100, 40_000, 100, 100.0)
    large = run(10_000, 40_000, 10_100, 1_100.0)
    assert bytes_per_stored_event(small, large) == 4_000.0


def test_no_figure_without_a_count_or_a_slope():
    assert bytes_per_stored_event(run(100, 40_000, None, 96.0), run(100_000, 40_000, 40_000, 3_568.0)) is None
    assert bytes_per_stored_event(run(100, 40_000, 100, None), run(100_000, 40_000, 40_000, 3_568.0)) is None


def test_no_figure_when_both_caps_kept_as_many_events():
    assert bytes_per_stored_event(run(100, 40_000, 100, 96.0), run(100_000, 40_000, 100, 90.0)) is None
