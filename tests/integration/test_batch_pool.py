"""Batch steps of every org share one pool of warm workers per node, through the node's dispatcher.

Ray never reuses a task worker that ran a task for one detached actor for
another detached actor's tasks; each org's processor is one. These tests run
steps from real detached actors standing in for two orgs' processors, and
check that the workers are shared, that a cancelled step stops, and that a
dispatcher killed mid-step does not lose it. Batch work runs at batch
priority: parse workers and processors, every thread of them, in SCHED_IDLE.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import psutil
import pytest
import ray
from tests.integration.conftest import wait_for
from tests.pages import article_ids

from linkproc_ray.adapters.actors import backend_name, processor_name
from linkproc_ray.adapters.batch import cpu_runner, dispatcher_handle, dispatcher_name
from linkproc_ray.config import NAMESPACE


@ray.remote(num_cpus=0)
class DetachedCaller:
    """Submits batch steps from inside a detached actor, as an org's processor does."""

    async def worker_pids(self, steps: int) -> list[int]:
        run = cpu_runner(0.5, "idle")
        return [await run(os.getpid, timeout=10) for _ in range(steps)]


def detached_caller() -> ray.actor.ActorHandle:
    return DetachedCaller.options(  # type: ignore[attr-defined]
        name=f"test-caller-{uuid.uuid4().hex[:8]}", namespace=NAMESPACE, lifetime="detached"
    ).remote()


def running_steps() -> list[psutil.Process]:
    """Ray workers whose title says they run a batch step now."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any("_run_cpu_task" in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


def test_two_orgs_steps_run_in_the_same_warm_workers(ray_cluster):
    first, second = detached_caller(), detached_caller()
    try:
        first_pids = set(ray.get(first.worker_pids.remote(6)))
        second_pids = set(ray.get(second.worker_pids.remote(6)))
    finally:
        ray.kill(first)
        ray.kill(second)
    # Submitted by each detached actor itself, the two sets could never meet.
    assert first_pids & second_pids
    node = ray.get_runtime_context().get_node_id()
    dispatcher = ray.get_actor(dispatcher_name(node), namespace=NAMESPACE)
    assert ray.get(dispatcher.stats.remote())["submitted"] >= 12


def thread_policies(pid: int) -> set[int]:
    return {os.sched_getscheduler(thread.id) for thread in psutil.Process(pid).threads()}


def actor_pid(name: str) -> int:
    return int(ray.get(ray.get_actor(name, namespace=NAMESPACE).stats.remote())["pid"])


def test_processors_and_parse_workers_run_at_batch_priority_and_backends_do_not(api, page_server, org):
    link = api.post("/links", json={"url": page_server.article_url(article_ids()[5])}).json()
    assert wait_for(lambda: api.get(f"/links/{link['id']}").json()["summary"])
    assert thread_policies(actor_pid(processor_name(org))) == {os.SCHED_IDLE}
    assert os.SCHED_IDLE not in thread_policies(actor_pid(backend_name(org)))  # saves keep Ray's priority
    parse_worker = asyncio.run(cpu_runner(0.5, "idle")(os.getpid, timeout=10))
    assert thread_policies(parse_worker) == {os.SCHED_IDLE}


def test_a_cancelled_step_stops_running(ray_cluster):
    async def cancel_a_long_step() -> None:
        step = asyncio.ensure_future(cpu_runner(0.5, "idle")(time.sleep, 60, timeout=120))
        await asyncio.to_thread(wait_for, running_steps, 30)
        step.cancel()
        with pytest.raises(asyncio.CancelledError):
            await step

    asyncio.run(cancel_a_long_step())
    wait_for(lambda: not running_steps(), timeout=30)


def test_a_step_survives_its_dispatcher_being_killed(ray_cluster):
    async def step_across_a_kill() -> object:
        step = asyncio.ensure_future(cpu_runner(0.5, "idle")(time.sleep, 3, timeout=30))
        await asyncio.to_thread(wait_for, running_steps, 30)
        ray.kill(dispatcher_handle(), no_restart=False)
        return await step

    assert asyncio.run(step_across_a_kill()) is None  # time.sleep's result: the step ran to its end
