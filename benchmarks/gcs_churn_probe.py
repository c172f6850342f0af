"""Which actor pattern makes the GCS's RSS grow with churn: bare Ray, none of this project's code.

``churn.py`` sees the GCS grow 23-34 KB per wake with every cache of dead
state full. This probe repeats the wake pattern with empty actors on a local
Ray cluster with those caches at 100, one ingredient at a time:

- ``--nested``: each woken actor creates a second named detached actor and
  calls it (the backend and its processor), instead of one actor alone;
- ``--get-if-exists``: actors are created with ``get_if_exists=True``, as the
  ingress creates backends;
- ``--nested --leaf-by-driver``: the second actor is created by the
  long-lived driver instead, and the first one only looks it up by name and
  calls it: the same actors and calls, a different creator.

Each wake creates its actors, calls them once and lets them exit. The GCS's
RSS is sampled every 50 wakes, and its slope past the caches is reported.

    python benchmarks/gcs_churn_probe.py --wakes 400                  # one actor per wake
    python benchmarks/gcs_churn_probe.py --wakes 400 --nested         # an actor that creates another

Writes benchmarks/results/churn-diagnosis/probe-<variant>.json.
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

import psutil
import ray

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.burst import ray_processes  # noqa: E402
from benchmarks.churn import slope  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "churn-diagnosis"
MIB = 1024 * 1024
CACHES = {
    "maximum_gcs_destroyed_actor_cached_count": 100,
    "task_events_max_num_task_in_gcs": 100,
    "maximum_gcs_dead_worker_cached_count": 100,
}
"""Every cache of dead state at 100: full after 50 wakes, so what grows past them is held by nothing named."""


@ray.remote(num_cpus=0)
class Leaf:
    """The second actor of a nested wake (the processor)."""

    def call(self) -> int:
        return os.getpid()

    def exit(self) -> None:
        ray.actor.exit_actor()


@ray.remote(num_cpus=0)
class Woken:
    """The actor a wake creates (the backend); with ``nested`` it creates and calls a :class:`Leaf`."""

    def __init__(self, name: str, nested: bool, get_if_exists: bool, leaf_by_driver: bool) -> None:
        self.leaf: Any = None
        if nested and leaf_by_driver:
            self.leaf = ray.get_actor(f"{name}:leaf")
        elif nested:
            self.leaf = Leaf.options(name=f"{name}:leaf", lifetime="detached", get_if_exists=get_if_exists).remote()  # type: ignore[attr-defined]

    def call(self) -> int:
        if self.leaf is not None:
            ray.get(self.leaf.call.remote())
        return os.getpid()

    def exit(self) -> None:
        if self.leaf is not None:
            self.leaf.exit.remote()
        ray.actor.exit_actor()


def gcs_process() -> psutil.Process:
    """This session's GCS (not another cluster's on the same machine)."""
    gcs: psutil.Process = next(proc for proc in ray_processes() if proc.name() == "gcs_server")
    return gcs


def probe(
    wakes: int, concurrency: int, nested: bool, get_if_exists: bool, leaf_by_driver: bool, config: dict[str, Any]
) -> dict[str, Any]:
    gcs = gcs_process()
    started = time.monotonic()
    samples = []
    done = 0
    while done < wakes:
        names = [f"wake-{done + k}" for k in range(concurrency)]
        if leaf_by_driver:
            leaves = [Leaf.options(name=f"{name}:leaf", lifetime="detached").remote() for name in names]  # type: ignore[attr-defined]
            ray.get([leaf.call.remote() for leaf in leaves])
            del leaves
        woken = [
            Woken.options(name=name, lifetime="detached", get_if_exists=get_if_exists).remote(  # type: ignore[attr-defined]
                name, nested, get_if_exists, leaf_by_driver
            )
            for name in names
        ]
        ray.get([actor.call.remote() for actor in woken])
        for actor in woken:
            actor.exit.remote()
        del woken
        done += concurrency
        if done % 50 < concurrency:
            rss = gcs.memory_info().rss / MIB
            samples.append({"wakes": done, "t": round(time.monotonic() - started, 1), "gcs_rss_mb": round(rss, 2)})
            print(f"  {done} wakes: GCS {rss:.1f} MiB", flush=True)
    actors_per_wake = 2 if nested else 1
    past = [s for s in samples if s["wakes"] * actors_per_wake > CACHES["maximum_gcs_destroyed_actor_cached_count"]]
    per_wake = slope([float(s["wakes"]) for s in past], [s["gcs_rss_mb"] * MIB for s in past])
    return {
        "wakes": done,
        "actors_per_wake": actors_per_wake,
        "nested": nested,
        "get_if_exists": get_if_exists,
        "leaf_by_driver": leaf_by_driver,
        "concurrency": concurrency,
        "gcs_rss_mb": {"start": samples[0]["gcs_rss_mb"], "end": samples[-1]["gcs_rss_mb"]},
        "gcs_bytes_per_wake_past_caches": per_wake,
        "ray_system_config": config,
        "samples": samples,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wakes", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--nested", action="store_true", help="each woken actor creates and calls a second one")
    parser.add_argument("--get-if-exists", action="store_true", help="create actors with get_if_exists=True")
    parser.add_argument(
        "--leaf-by-driver", action="store_true", help="with --nested: the driver creates the second actor"
    )
    parser.add_argument(
        "--ray-config", type=json.loads, default={}, help="Ray settings over the caches, as JSON (named in the file)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    options = parser.parse_args(argv)
    if options.leaf_by_driver and not options.nested:
        parser.error("--leaf-by-driver needs --nested")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    config = {**CACHES, **options.ray_config}
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, namespace="probe", _system_config=config)
    try:
        result = probe(
            options.wakes, options.concurrency, options.nested, options.get_if_exists, options.leaf_by_driver, config
        )
    finally:
        ray.shutdown()
    variant = "-".join(
        ["nested" if options.nested else "single"]
        + (["get-if-exists"] if options.get_if_exists else [])
        + (["leaf-by-driver"] if options.leaf_by_driver else [])
        + [f"{name}-{value}" for name, value in options.ray_config.items()]
    )
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / f"probe-{variant}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{variant}: {result['wakes']} wakes, GCS {result['gcs_rss_mb']['start']} -> {result['gcs_rss_mb']['end']} MiB,"
        f" {result['gcs_bytes_per_wake_past_caches']} bytes per wake past the caches"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
