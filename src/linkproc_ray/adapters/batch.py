"""Batch CPU work (parsing) as Ray tasks that share one warm pool per node, at batch priority.

Ray never gives a task worker that ran a task for one detached actor to
another detached actor's tasks (its worker pool matches workers by the root
detached actor). Every org's processor is a detached actor, so when each
submitted its own parse tasks, each org got parse workers of its own: a Ray
worker start and the parser imports (about 0.5–1 s of CPU and 150 MiB each)
per org and per parse slot, idle for a minute, then killed. Instead the
processors hand their parse steps to ``linkproc-batch:<node>``, one detached actor
per node, which submits every org's tasks, so that they all share one pool
of warm workers; Ray's scheduler still spreads them over the cluster's CPUs.

Ray runs every worker at one niceness, so batch work would get the same
share of a core as saves, pulls and live delivery. Batch processes (parse
workers, and the processors themselves) lower their own priority once, every
thread of them (Linux keeps niceness and policy per thread; threads started
later inherit them): ``nice`` makes Ray's niceness 15 into 19, ``idle`` puts
them in ``SCHED_IDLE`` (they run only when nothing else wants the CPU),
``normal`` leaves them as Ray set them. Where the platform has no
``SCHED_IDLE`` (macOS), ``idle`` falls back to niceness 19.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any, Literal

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from linkproc_ray.config import NAMESPACE
from linkproc_ray.errors import ParseTimeout
from linkproc_ray.pipeline.enricher import Step, resolve, step_name

Priority = Literal["nice", "idle", "normal"]

DISPATCHER_PREFIX = "linkproc-batch"

_lowered: Priority | None = None
"""What this process's priority was lowered to (a worker process runs many tasks)."""


def _threads() -> list[int]:
    """This process's threads where Linux lists them (it keeps priority per thread); elsewhere 0, the process."""
    listed = "/proc/self/task"
    return [int(thread) for thread in os.listdir(listed)] if os.path.isdir(listed) else [0]


def lower_priority(priority: Priority) -> None:
    """Lower the CPU priority of every thread of this process once, as ``priority`` says."""
    global _lowered
    if _lowered is not None or priority == "normal":
        return
    for thread in _threads():
        try:
            if priority == "idle" and hasattr(os, "SCHED_IDLE"):
                os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))
            else:
                os.setpriority(os.PRIO_PROCESS, thread, 19)
        except ProcessLookupError:  # a thread that ended meanwhile
            continue
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


@ray.remote(num_cpus=0)
class BatchDispatcherActor:
    """``linkproc-batch:<node>``: submits the batch tasks of every org actor on its node, so they share workers."""

    def __init__(self) -> None:
        self.submitted = 0

    async def run(self, step: Step, timeout: float, priority: Priority, num_cpus: float, *args: Any) -> Any:
        self.submitted += 1
        # No task events: one per parse would pile up in the GCS (see actors.actor_options).
        ref = _run_cpu_task.options(num_cpus=num_cpus, enable_task_events=False).remote(step, timeout, priority, *args)
        try:
            return await ref
        except asyncio.CancelledError:
            ray.cancel(ref, force=True)
            raise
        except ray.exceptions.RayTaskError as exc:
            # The step's own error (ParseTimeout, a parser's bug), not a wrapper around it.
            raise exc.cause from None

    def stats(self) -> dict[str, int]:
        return {"pid": os.getpid(), "submitted": self.submitted}


def dispatcher_name(node_id: str) -> str:
    return f"{DISPATCHER_PREFIX}:{node_id}"


@cache
def dispatcher_handle() -> Any:
    """This node's dispatcher, created where it is missing (restarted forever, like the org actors)."""
    node_id = ray.get_runtime_context().get_node_id()
    return BatchDispatcherActor.options(  # type: ignore[attr-defined]
        name=dispatcher_name(node_id),
        namespace=NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
        # A call lost with a restarting dispatcher runs again: a step is a pure function.
        max_task_retries=1,
        max_concurrency=1000,
        enable_task_events=False,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
    ).remote()


def cpu_runner(num_cpus: float, priority: Priority) -> Callable[..., Awaitable[Any]]:
    """Run CPU-heavy steps as stateless Ray tasks spread over the cluster's CPUs, at batch priority."""

    async def run(step: Step, *args: Any, timeout: float) -> Any:
        ref = dispatcher_handle().run.remote(step, timeout, priority, num_cpus, *args)
        try:
            return await ref
        except asyncio.CancelledError:
            # Not recursive: Ray's own cancel of the child task (polite, it does
            # not stop a running step) would make the dispatcher's forced one a no-op.
            ray.cancel(ref, recursive=False)
            raise

    return run
