"""How many live orgs a node holds: memory (RSS/PSS/USS) and idle CPU of K orgs' actor pairs.

Each org is a booted SyncBackend actor plus a booted LinkProcessor following
its log (the state of an org between links). Writes results/org_capacity.json.

    python benchmarks/org_capacity.py --orgs 16 --idle 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
import ray

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.capacity_model import LiveOrg, Node, live_orgs_per_node  # noqa: E402
from benchmarks.ray_floor import cores_used, cpu_seconds, start_empty_actors  # noqa: E402

from linkproc_ray.adapters.actors import backend_handle, processor_handle  # noqa: E402
from linkproc_ray.config import NAMESPACE, Settings  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "org_capacity.json"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Result:
    orgs: int
    idle_seconds: float
    rss_mib_per_pair: float
    pss_mib_per_pair: float
    uss_mib_per_pair: float
    idle_cpu_cores_per_pair: float
    logical_cpus_per_pair: float
    reserved_memory_mib_per_pair: float
    ray_floor_cores_per_pair: float
    """Idle CPU of two empty Ray actors in the same window: what no code of ours could remove."""
    idle_cpu_cores_per_process: dict[str, float]
    """Idle CPU of one backend, one processor and one empty Ray actor, measured in the same window."""
    mib_per_process: dict[str, dict[str, float]]
    """RSS/PSS/USS of one backend, one processor and one empty Ray actor (Ray's own floor), measured together."""
    boot_seconds: float
    machine: str


def pids_of(org: str, settings: Settings) -> list[int]:
    def pid(_self: object) -> int:
        return os.getpid()

    handles = (backend_handle(org, settings), processor_handle(org, settings))
    return [ray.get(handle.__ray_call__.remote(pid)) for handle in handles]


async def boot(org: str, settings: Settings) -> None:
    """Open the backend's log and the processor's replica; the processor then follows the log."""
    await backend_handle(org, settings).stats.remote()
    await processor_handle(org, settings).catch_up.remote()


def per_process(pids: list[int]) -> dict[str, float]:
    rss, pss, uss = memory_of(pids)
    return {"rss": round(rss / len(pids), 1), "pss": round(pss / len(pids), 1), "uss": round(uss / len(pids), 1)}


def memory_of(pids: list[int]) -> tuple[float, float, float]:
    rss = pss = uss = 0.0
    for pid in pids:
        info = psutil.Process(pid).memory_full_info()
        rss, pss, uss = rss + info.rss, pss + info.pss, uss + info.uss
    return rss / MIB, pss / MIB, uss / MIB


def measure(orgs: int, idle: float, data_dir: Path) -> Result:
    settings = Settings(data_dir=data_dir, jwt_secret="capacity-benchmark-secret-long-enough")
    names = [f"capacity-{i}" for i in range(orgs)]
    started = time.monotonic()

    async def boot_all() -> None:
        await asyncio.gather(*(boot(org, settings) for org in names))

    asyncio.run(boot_all())
    boot_seconds = time.monotonic() - started
    pids = [pid for org in names for pid in pids_of(org, settings)]
    # Let start-up work (imports, first pulls) finish before the idle window.
    time.sleep(5)
    rss, pss, uss = memory_of(pids)
    # Then as many empty actors as org actors beside them, so that PSS splits shared pages alike
    # and the idle window measures Ray's floor next to our actors.
    _empty, empty_pids = start_empty_actors(len(pids))
    time.sleep(5)
    before = cpu_seconds([*pids, *empty_pids])
    time.sleep(idle)
    after = cpu_seconds([*pids, *empty_pids])
    idle_cores = {
        "backend": cores_used(before, after, pids[0::2], idle) / orgs,
        "processor": cores_used(before, after, pids[1::2], idle) / orgs,
        "empty_ray_actor": cores_used(before, after, empty_pids, idle) / len(empty_pids),
    }
    by_process = {
        "backend": per_process(pids[0::2]),
        "processor": per_process(pids[1::2]),
        "empty_ray_actor": per_process(empty_pids),
    }
    return Result(
        orgs=orgs,
        idle_seconds=idle,
        rss_mib_per_pair=round(rss / orgs, 1),
        pss_mib_per_pair=round(pss / orgs, 1),
        uss_mib_per_pair=round(uss / orgs, 1),
        idle_cpu_cores_per_pair=round(idle_cores["backend"] + idle_cores["processor"], 4),
        ray_floor_cores_per_pair=round(2 * idle_cores["empty_ray_actor"], 4),
        idle_cpu_cores_per_process={role: round(cores, 5) for role, cores in idle_cores.items()},
        logical_cpus_per_pair=2 * settings.actor_num_cpus,
        reserved_memory_mib_per_pair=2 * settings.actor_memory_mb,
        mib_per_process=by_process,
        boot_seconds=round(boot_seconds, 1),
        machine=f"{platform.machine()}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB",
    )


def capacity(result: Result, node: Node) -> dict[str, Any]:
    """Live org pairs per node under each limit (the capacity model's arithmetic); the smallest one binds."""
    live = LiveOrg(
        result.pss_mib_per_pair,
        result.idle_cpu_cores_per_pair,
        result.logical_cpus_per_pair,
        result.reserved_memory_mib_per_pair,
    )
    limits = live_orgs_per_node(live, node)
    return {"node": asdict(node), "limits": limits, "binding": min(limits, key=limits.__getitem__)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=16)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU measurement")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        address="local",
        num_cpus=4,
        namespace=NAMESPACE,
        include_dashboard=False,
        logging_level="WARNING",
        log_to_driver=False,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="linkproc-capacity-") as data_dir:
            result = measure(args.orgs, args.idle, Path(data_dir))
    finally:
        ray.shutdown()
    nodes = [capacity(result, Node(4, 16)), capacity(result, Node(8, 32))]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"measured": asdict(result), "capacity": nodes}, indent=2) + "\n")

    print(f"{result.orgs} live org pairs on {result.machine}, idle window {result.idle_seconds:.0f} s")
    print(f"{'per org pair':<28}{'value':>10}")
    for label, value in (
        ("RSS MiB", result.rss_mib_per_pair),
        ("PSS MiB", result.pss_mib_per_pair),
        ("USS MiB", result.uss_mib_per_pair),
        ("idle CPU (cores)", result.idle_cpu_cores_per_pair),
        ("  Ray's floor (2 empty actors)", result.ray_floor_cores_per_pair),
        ("Ray logical CPUs", result.logical_cpus_per_pair),
        ("Ray memory reserved MiB", result.reserved_memory_mib_per_pair),
    ):
        print(f"{label:<28}{value:>10}")
    print(f"\n{'per process':<28}{'RSS MiB':>8}{'PSS':>8}{'USS':>8}{'idle cores':>12}")
    for role, memory in result.mib_per_process.items():
        cores = result.idle_cpu_cores_per_process[role]
        print(f"{role:<28}{memory['rss']:>8}{memory['pss']:>8}{memory['uss']:>8}{cores:>12}")
    for entry in nodes:
        node = entry["node"]
        limits = ", ".join(f"{k} {v}" for k, v in entry["limits"].items())
        print(f"{node['vcpus']} vCPU / {node['memory_gib']:.0f} GiB node: {limits} -> {entry['binding']} binds")


if __name__ == "__main__":
    main()
