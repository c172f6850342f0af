"""Batch CPU work (parsing) as Ray tasks that yield the CPU to the interactive path.

Ray runs every worker at one niceness, so parse tasks would get the same
share of a core as saves, pulls and live delivery. Each task lowers its own
worker's priority first (once per worker: Ray does not reuse task workers for
actors): ``nice`` adds 4 to the niceness (Ray's 15 becomes 19), ``idle``
puts the worker in ``SCHED_IDLE`` (it runs only when nothing else wants the
CPU), ``normal`` leaves it as Ray set it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import ray

from linkproc_ray.errors import ParseTimeout
from linkproc_ray.pipeline.enricher import Step, resolve, step_name

Priority = Literal["nice", "idle", "normal"]

_lowered: Priority | None = None
"""What this worker's priority was lowered to (a worker process runs many tasks)."""


def lower_priority(priority: Priority) -> None:
    """Lower this worker process's CPU priority once, as ``priority`` says."""
    global _lowered
    if _lowered is not None or priority == "normal":
        return
    if priority == "idle":
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    else:
        os.nice(19 - os.nice(0))
    _lowered = priority


@ray.remote(max_retries=1)
def _run_cpu_task(step: Step, timeout: float, priority: Priority, *args: Any) -> Any:
    lower_priority(priority)
    function = resolve(step)

    # The clock starts when the task runs, not while it waits for a CPU: an
    # interval timer interrupts the function itself (tasks run on the worker's
    # main thread, where Python delivers signals).
    def expire(signum: int, frame: object) -> None:
        raise ParseTimeout(f"{step_name(step)} took longer than {timeout:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return function(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def cpu_runner(num_cpus: float, priority: Priority = "nice") -> Callable[..., Awaitable[Any]]:
    """Run CPU-heavy steps as stateless Ray tasks spread over the cluster's CPUs, at batch priority."""

    async def run(step: Step, *args: Any, timeout: float) -> Any:
        # No task events: one per parse would pile up in the GCS (see actors.actor_options).
        ref = _run_cpu_task.options(num_cpus=num_cpus, enable_task_events=False).remote(step, timeout, priority, *args)
        try:
            return await ref
        except asyncio.CancelledError:
            ray.cancel(ref, force=True)
            raise

    return run
