"""What one stored task event costs the GCS: bare Ray, none of this project's code.

Every task and every actor creation leaves a task event that the GCS keeps
for ``ray list tasks`` and the dashboard, up to ``task_events_max_num_task_in_gcs``
(100,000 by default). Each wake of an org creates two actors, so under
wake/hibernate churn the store fills until that cap. This probe runs the same
number of empty tasks on a fresh local cluster once per cap, samples the
GCS's RSS as they finish, and reads how many events the GCS says it holds:

    python benchmarks/task_events_probe.py                       # 40,000 tasks at caps 100 and 100,000

The bytes per stored event are the difference of the two RSS slopes per task,
divided by the difference of the events each cap kept per task. Writes
benchmarks/results/churn-diagnosis/task-events.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.churn import MIB, cluster_gcs_debug_counts, slope  # noqa: E402
from benchmarks.gcs_churn_probe import gcs_process  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "churn-diagnosis"
DUMP_INTERVAL_S = 60.0
"""The GCS writes its debug state (with the count of stored task events) once a minute."""


@ray.remote(num_cpus=0)
def empty() -> None:
    """A task that costs nothing but its bookkeeping."""


def run_tasks(tasks: int, batch: int, every: int) -> list[dict[str, Any]]:
    """Runs ``tasks`` empty tasks ``batch`` at a time (both multiples of it); the GCS's RSS every ``every`` tasks."""
    gcs = gcs_process()
    started = time.monotonic()
    samples = [{"tasks": 0, "t": 0.0, "gcs_rss_mb": round(gcs.memory_info().rss / MIB, 2)}]
    done = 0
    while done < tasks:
        ray.get([empty.remote() for _ in range(batch)])
        done += batch
        if done % every == 0 or done == tasks:
            rss = gcs.memory_info().rss / MIB
            samples.append({"tasks": done, "t": round(time.monotonic() - started, 1), "gcs_rss_mb": round(rss, 2)})
            print(f"  {done} tasks: GCS {rss:.1f} MiB", flush=True)
    return samples


def stored_events(wait_s: float) -> int | None:
    """The task events the GCS holds, from its next debug dump (``None`` if none came within ``wait_s``)."""
    seen = len(cluster_gcs_debug_counts())
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        counts = cluster_gcs_debug_counts()
        if len(counts) > seen and "task_events_stored" in counts[-1]:
            return counts[-1]["task_events_stored"]
        time.sleep(1.0)
    return None


def probe_cap(cap: int, tasks: int, batch: int, every: int) -> dict[str, Any]:
    """One fresh cluster with the task-event store capped at ``cap``."""
    config = {"task_events_max_num_task_in_gcs": cap}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="probe", _system_config=config)
    try:
        samples = run_tasks(tasks, batch, every)
        stored = stored_events(DUMP_INTERVAL_S + 15.0)
    finally:
        ray.shutdown()
    warm = samples[len(samples) // 4 :]
    return {
        "cap": cap,
        "tasks": tasks,
        "task_events_stored": stored,
        "gcs_rss_mb": {"start": samples[0]["gcs_rss_mb"], "end": samples[-1]["gcs_rss_mb"]},
        "gcs_bytes_per_task": slope([float(s["tasks"]) for s in warm], [s["gcs_rss_mb"] * MIB for s in warm]),
        "samples": samples,
    }


def bytes_per_stored_event(small: dict[str, Any], large: dict[str, Any]) -> float | None:
    """What one more stored event costs: the runs' difference in RSS slope over their difference in events kept.

    Both runs do the same tasks, so everything but the stored events cancels
    out. ``None`` when a run lacks its slope or its count, or both kept as many.
    """
    small_slope, large_slope = small["gcs_bytes_per_task"], large["gcs_bytes_per_task"]
    small_kept, large_kept = small["task_events_stored"], large["task_events_stored"]
    if None in (small_slope, large_slope, small_kept, large_kept):
        return None
    kept_per_task = (large_kept - small_kept) / large["tasks"]
    if kept_per_task <= 0:
        return None
    return round((large_slope - small_slope) / kept_per_task, 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40_000)
    parser.add_argument("--caps", type=int, nargs=2, default=[100, 100_000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--batch", type=int, default=500, help="tasks in flight at once")
    parser.add_argument("--every", type=int, default=2_000, help="sample the GCS every this many tasks")
    parser.add_argument("--out", type=Path, default=RESULTS / "task-events.json")
    options = parser.parse_args(argv)
    if options.tasks % options.batch or options.every % options.batch:
        parser.error("--tasks and --every must be multiples of --batch")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    small, large = (probe_cap(cap, options.tasks, options.batch, options.every) for cap in sorted(options.caps))
    result = {
        "tasks": options.tasks,
        "machine_cpus": os.cpu_count(),
        "ray_version": ray.__version__,
        "bytes_per_stored_event": bytes_per_stored_event(small, large),
        "runs": [small, large],
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| cap | tasks | events stored | GCS RSS start → end (MiB) | GCS bytes per task |")
    print("| ---: | ---: | ---: | --- | ---: |")
    for run in (small, large):
        rss = run["gcs_rss_mb"]
        print(
            f"| {run['cap']:,} | {run['tasks']:,} | {run['task_events_stored']} | {rss['start']} → {rss['end']} |"
            f" {run['gcs_bytes_per_task']} |"
        )
    print(f"\nGCS bytes per stored task event: {result['bytes_per_stored_event']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
