"""A cold org's first save: how long its backend takes to start, and what Ray's prestarted workers give.

A save to a hibernated org waits for ``get_if_exists`` to create the org's
backend actor: the raylet starts a worker process (Python, Ray, our imports),
the actor restores its log, and then it acknowledges the save. Ray's raylet can
start workers ahead of need (its ``PrestartWorkers`` RPC: a worker for this
job, kept idle for a while, that the next actor of the job may take). Ray 2.60
has no Python API for it, so this benchmark calls the RPC itself, as newer Ray
releases' ``prestart_workers`` helper does. Orgs alternate between the two
modes on an idle node, one at a time:

- ``cold``: ``get_if_exists`` with no idle worker waiting;
- ``prestarted``: one worker prestarted first, and idle when the save is sent.

    python benchmarks/actor_start.py --orgs 8

Writes benchmarks/results/actor_start.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.burst import JSON, percentiles, ray_processes  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "actor_start.json"
MODES = ("cold", "prestarted")


def idle_workers() -> set[int]:
    """PIDs of this session's idle Python workers: started, holding no task or actor."""
    idle = set()
    for proc in ray_processes():
        try:
            if proc.cmdline()[:1] == ["ray::IDLE"]:
                idle.add(proc.pid)
        except psutil.NoSuchProcess:
            continue
    return idle


def prestart_worker(keep_alive_s: int) -> None:
    """Ask this node's raylet to start one Python worker for this job and keep it idle ``keep_alive_s``."""
    import grpc
    import ray
    from ray._private.authentication.grpc_authentication_client_interceptor import (
        _get_authentication_metadata_tuple,
    )
    from ray.core.generated import common_pb2, node_manager_pb2, node_manager_pb2_grpc, runtime_environment_pb2

    node = next(n for n in ray.nodes() if n["NodeID"] == ray.get_runtime_context().get_node_id())
    with grpc.insecure_channel(f"{node['NodeManagerAddress']}:{node['NodeManagerPort']}") as channel:
        request = node_manager_pb2.PrestartWorkersRequest(
            language=common_pb2.Language.PYTHON,
            job_id=bytes.fromhex(ray.get_runtime_context().get_job_id()),
            runtime_env_info=runtime_environment_pb2.RuntimeEnvInfo(serialized_runtime_env="{}"),
            keep_alive_duration_secs=keep_alive_s,
            num_workers=1,
        )
        node_manager_pb2_grpc.NodeManagerServiceStub(channel).PrestartWorkers(
            request, timeout=10, metadata=_get_authentication_metadata_tuple()
        )


def wait_for_idle_worker(before: set[int], timeout: float = 15.0) -> bool:
    """Wait until a worker that was not idle in ``before`` is idle (started and registered)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if idle_workers() - before:
            time.sleep(0.5)  # registered with the raylet, not only forked
            return True
        time.sleep(0.1)
    return False


def first_save_ms(org: str, settings: Any) -> float:
    """``get_if_exists`` on the org's backend to its acknowledgement of a save."""
    import ray

    from linkproc_ray.adapters.actors import backend_handle

    sent = time.perf_counter()
    ray.get(backend_handle(org, settings).create_link.remote(f"https://example.com/{org}", "example.com", None, org))
    return (time.perf_counter() - sent) * 1000


def settle(seconds: float = 3.0) -> None:
    """Let the node go quiet between orgs: the last actor's start-up work and pulls end."""
    time.sleep(seconds)


def measure(orgs: int, data_dir: Path) -> JSON:
    import ray

    from linkproc_ray.adapters.actors import backend_name
    from linkproc_ray.adapters.local import RAY_SYSTEM_CONFIG
    from linkproc_ray.config import NAMESPACE, Settings

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        address="local",
        namespace=NAMESPACE,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
        _system_config=RAY_SYSTEM_CONFIG,
    )
    settings = Settings(data_dir=data_dir, jwt_secret="actor-start-benchmark-secret-long-enough")
    run = uuid.uuid4().hex[:6]
    samples: dict[str, list[float]] = {mode: [] for mode in MODES}
    not_idle = 0
    try:
        settle(5.0)  # the first driver's own prestarted workers are taken or gone
        for number in range(orgs * len(MODES)):
            mode = MODES[number % len(MODES)]
            org = f"start-{run}-{number}"
            if mode == "prestarted":
                before = idle_workers()
                prestart_worker(keep_alive_s=60)
                not_idle += not wait_for_idle_worker(before)
            samples[mode].append(round(first_save_ms(org, settings), 1))
            ray.kill(ray.get_actor(backend_name(org), namespace=NAMESPACE))
            settle()
    finally:
        ray.shutdown()
    return {
        "orgs_per_mode": orgs,
        "first_save_ms": {mode: percentiles(values) for mode, values in samples.items()},
        "samples_ms": samples,
        "prestarted_not_idle_in_time": not_idle,
        "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB",
    }


def markdown(result: JSON) -> str:
    rows = ["| mode | first save p50 (ms) | p95 | p99 |", "| --- | ---: | ---: | ---: |"]
    for mode in MODES:
        p = result["first_save_ms"][mode]
        rows.append(f"| {mode} | {p['p50']} | {p['p95']} | {p['p99']} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orgs", type=int, default=8, help="orgs per mode (they alternate)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="linkproc-actor-start-") as data_dir:
        result = measure(options.orgs, Path(data_dir))
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    print(f"\nwritten to {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
