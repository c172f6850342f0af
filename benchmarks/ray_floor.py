"""Ray's own idle floor: what an actor process with none of our code costs, measured beside ours.

No Ray actor idles at zero CPU: every worker's main thread wakes every 10 ms
to check for signals (``CoreWorker::RunTaskExecutionLoop``, a fixed period in
Ray 2.60, not a setting). An org actor's idle cost is therefore judged by what
it spends above an empty actor that idles in the same window on the same node.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import psutil
import ray


@ray.remote(num_cpus=0)
class EmptyActor:
    """An actor with no code of ours: what any Ray actor process costs before the org's work is loaded."""

    def pid(self) -> int:
        return os.getpid()


def start_empty_actors(count: int) -> tuple[list[Any], list[int]]:
    """``count`` empty actors and their pids; keep the handles, or Ray ends the actors."""
    actors = [EmptyActor.remote() for _ in range(count)]  # type: ignore[attr-defined]
    return actors, ray.get([actor.pid.remote() for actor in actors])


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """User plus system CPU seconds of each process still running."""
    spent: dict[int, float] = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        spent[pid] = times.user + times.system
    return spent


def cores_used(before: dict[int, float], after: dict[int, float], pids: Iterable[int], seconds: float) -> float:
    """Cores the processes used together between two ``cpu_seconds`` readings ``seconds`` apart."""
    return sum(after[p] - before[p] for p in pids if p in before and p in after) / seconds
