"""Wake/hibernate churn: many orgs cycle save -> processed -> hibernate -> wake, while the GCS is watched.

Every wake makes two new named detached actors (the org's backend and
processor) and every hibernation leaves two dead ones, which the GCS keeps in
its tables up to ``maximum_gcs_destroyed_actor_cached_count``. This run
cycles orgs through that loop through the Serve ingress of a local Ray
cluster, with a short idle TTL and pages that answer 404 at once (the wake
machinery, not parsing), and records over time: GCS and raylet RSS, the
actor entries the GCS keeps (dead ones included), the wake latency (POST sent
to the link's LinkProcessingStarted) and how long each actor took to be
created. A series that still grows in the last third of the run is flagged.

    python benchmarks/churn.py --quick     # 200 orgs x 5 wakes = 1,000 wakes
    python benchmarks/churn.py             # 400 orgs, as many wakes as 30 minutes allow

Writes benchmarks/results/churn.json and churn.png (churn-quick.* for
--quick) and prints a markdown table. Exits 1 when a link was lost or
processed twice, or a wake found its org's actors still alive.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.burst import (  # noqa: E402
    JSON,
    CpuMeter,
    PageProcess,
    audit_log,
    percentiles,
    ray_helper_role,
    ray_processes,
)
from benchmarks.local_system import local_system  # noqa: E402
from benchmarks.soak import growth  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SECRET = "churn-benchmark-secret-that-is-long-enough-for-hs256"
APP_NAME = "linkproc-churn"
ROUTE_PREFIX = "/churn"
MIB = 1024 * 1024
STARTED = "v1.LinkProcessingStarted"
TERMINAL = frozenset({"v1.LinkProcessingCompleted", "v1.LinkProcessingFailed", "v1.LinkProcessingCancelled"})


@dataclass
class Wake:
    """One org waking for one save, and what it cost."""

    org: str
    number: int
    link_id: str = ""
    sent_epoch: float = 0.0
    post_ms: float = 0.0
    wake_ms: float = 0.0
    terminal_at: float = 0.0
    hibernate_s: float = 0.0


@dataclass
class Watch:
    """What the GCS and the raylet look like, refreshed by :func:`watch`; the orgs read ``alive``."""

    alive: set[str] = field(default_factory=set)
    alive_at: float = 0.0
    started_ms: dict[str, set[int]] = field(default_factory=dict)
    """Every actor incarnation seen alive, by name: its ``StartTime`` (the GCS drops dead ones past its cache)."""
    placed: dict[tuple[str, int], str] = field(default_factory=dict)
    """The node each incarnation ran on, by (name, ``StartTime``)."""
    live_peak_by_node: dict[str, int] = field(default_factory=dict)
    """The most org actors seen alive at once on each node."""
    samples: list[JSON] = field(default_factory=list)
    cpu: CpuMeter = field(default_factory=CpuMeter)
    ingress_pids: set[int] = field(default_factory=set)
    """Every ingress replica process seen: more than one means Serve replaced a worn-out one."""


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def actor_table(state: str | None = None) -> dict[str, JSON]:
    """The GCS's actor table (every entry it keeps, dead ones included), or only the entries in ``state``."""
    import ray

    table: dict[str, JSON] = ray._private.state.state.actor_table(None, actor_state_name=state)
    return table


def log_dir_entries() -> int:
    """Files in this session's log directory and its ``events/``: what Ray's log monitor and agent list each second."""
    import ray

    logs = Path(ray._private.worker._global_node.get_logs_dir_path())
    return sum(len(list(folder.iterdir())) for folder in (logs, logs / "events") if folder.is_dir())


def metric_series() -> tuple[int, int] | None:
    """Series in every live node's Prometheus text, all and ``linkproc_`` ones: what the metrics agents keep.

    None when a node's endpoint does not answer: a partial count would read as a drop.
    """
    import ray

    series: list[str] = []
    for node in ray.nodes():
        if not node["Alive"]:
            continue
        try:
            response = httpx.get(f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics", timeout=10)
            response.raise_for_status()
        except httpx.HTTPError:
            return None
        series += [line for line in response.text.splitlines() if line and not line.startswith("#")]
    return len(series), sum(1 for line in series if line.startswith("ray_linkproc_"))


def function_table() -> tuple[int, int]:
    """Entries and bytes of the GCS's function table: the pickled classes and functions processes stored.

    Ray keeps them for the job's life. It found the processor's class stored
    again by every backend that created it (adapters/class_ids.py).
    """
    from ray.experimental import internal_kv

    keys = internal_kv._internal_kv_list(b"", namespace=b"fun")
    return len(keys), sum(len(internal_kv._internal_kv_get(key, namespace=b"fun") or b"") for key in keys)


def cpu_share_by_third(samples: list[JSON], series: str) -> JSON:
    """A process's share of one core in each third of the run, from its cumulative CPU seconds."""
    thirds = []
    size = len(samples) // 3
    for part in range(3):
        chunk = samples[part * size : (part + 1) * size + 1] if size else []
        if len(chunk) < 2 or chunk[-1]["t"] == chunk[0]["t"]:
            return {"first": None, "middle": None, "last": None}
        thirds.append(round((chunk[-1][series] - chunk[0][series]) / (chunk[-1]["t"] - chunk[0]["t"]), 4))
    return dict(zip(("first", "middle", "last"), thirds, strict=True))


def sample(watch: Watch, wakes_done: int, started: float) -> JSON:
    """One point of the series: daemon RSS, the GCS's actor entries, and the cluster's CPU so far."""
    procs = ray_processes()
    rss = {"gcs_server": 0.0, "raylet": 0.0}
    gcs_file_backed = 0.0
    gcs_threads = gcs_maps = 0
    ingress = 0.0
    helpers = {"DashboardAgent": [0.0, 0.0], "log monitor": [0.0, 0.0]}
    """RSS (MiB) and CPU seconds of Ray's helpers that scan the log directory, summed over the nodes."""
    for proc in procs:
        try:
            name = proc.name()
            if "Ingress" in " ".join(proc.cmdline()):
                ingress += proc.memory_info().rss / MIB
                watch.ingress_pids.add(proc.pid)
            role = ray_helper_role(proc.cmdline())
            if role in helpers:
                times = proc.cpu_times()
                helpers[role][0] += proc.memory_info().rss / MIB
                helpers[role][1] += times.user + times.system
            if name in rss:
                memory = proc.memory_info()
                rss[name] += memory.rss / MIB
                if name == "gcs_server":
                    # Resident pages of the binary and its libraries: they grow as new code
                    # paths run and stop at the file's size, so they are not held data.
                    gcs_file_backed += memory.shared / MIB
                    # Threads and mappings: anonymous memory that is neither table nor heap shows here.
                    gcs_threads = proc.num_threads()
                    gcs_maps = len(Path(f"/proc/{proc.pid}/maps").read_text().splitlines())
        except psutil.NoSuchProcess:
            continue
    watch.cpu.sample(procs)
    entries = actor_table()
    dead = sum(1 for entry in entries.values() if entry["State"] == "DEAD")
    counted = metric_series()
    functions, function_bytes = function_table()
    return {
        "t": round(time.monotonic() - started, 2),
        "wakes": wakes_done,
        "gcs_rss_mb": round(rss["gcs_server"], 2),
        "gcs_anon_mb": round(rss["gcs_server"] - gcs_file_backed, 2),
        "gcs_threads": gcs_threads,
        "gcs_maps": gcs_maps,
        "agent_rss_mb": round(helpers["DashboardAgent"][0], 2),
        "agent_cpu_s": round(helpers["DashboardAgent"][1], 2),
        "log_monitor_cpu_s": round(helpers["log monitor"][1], 2),
        "log_dir_entries": log_dir_entries(),
        "metric_series": counted[0] if counted else None,
        "linkproc_metric_series": counted[1] if counted else None,
        "raylet_rss_mb": round(rss["raylet"], 2),
        "ingress_rss_mb": round(ingress, 2),
        "actor_entries": len(entries),
        "dead_actor_entries": dead,
        "function_table_entries": functions,
        "function_table_kb": round(function_bytes / 1024, 1),
        "cluster_cpu_s": round(watch.cpu.seconds, 2),
    }


async def watch_cluster(watch: Watch, wakes: list[Wake], every: float, started: float, halt: asyncio.Event) -> None:
    """Refresh the live actor names twice a second and take a sample every ``every`` seconds."""
    from linkproc_ray.adapters.actors import backend_name, processor_name

    org_actor = (backend_name(""), processor_name(""))
    next_sample = 0.0
    while not halt.is_set():
        asked = time.monotonic()
        alive = await asyncio.to_thread(actor_table, "ALIVE")
        watch.alive = {entry["Name"] for entry in alive.values()}
        live_by_node: dict[str, int] = {}
        for entry in alive.values():
            if entry["StartTime"] and entry["Name"].startswith(org_actor):
                watch.started_ms.setdefault(entry["Name"], set()).add(int(entry["StartTime"]))
                node = entry["Address"]["NodeID"]
                watch.placed[(entry["Name"], int(entry["StartTime"]))] = node
                live_by_node[node] = live_by_node.get(node, 0) + 1
        for node, live in live_by_node.items():
            watch.live_peak_by_node[node] = max(live, watch.live_peak_by_node.get(node, 0))
        watch.alive_at = asked
        if asked >= next_sample:
            done = sum(1 for wake in wakes if wake.terminal_at)
            watch.samples.append(await asyncio.to_thread(sample, watch, done, started))
            next_sample = asked + every
        try:
            await asyncio.wait_for(halt.wait(), 0.5)
        except TimeoutError:
            pass


async def wait_until_hibernated(org: str, watch: Watch, since: float, timeout: float) -> None:
    """Until a view of the GCS taken after ``since`` shows neither of the org's actors alive."""
    from linkproc_ray.adapters.actors import backend_name, processor_name

    names = {backend_name(org), processor_name(org)}
    deadline = time.monotonic() + timeout
    while watch.alive_at <= since or names & watch.alive:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{org}'s actors did not hibernate within {timeout:.0f} s")
        await asyncio.sleep(0.25)


async def wake_once(http: httpx.AsyncClient, wake: Wake, page_base: str, timeout: float) -> list[JSON]:
    """Save one link to a hibernated org and follow its log until the link is terminal; the log read so far."""
    sent = time.perf_counter()
    wake.sent_epoch = time.time()
    response = await http.post(
        f"/v1/orgs/{wake.org}/links", json={"url": f"{page_base}/missing/{wake.org}-{wake.number}"}
    )
    response.raise_for_status()
    wake.post_ms = round((time.perf_counter() - sent) * 1000, 1)
    wake.link_id = response.json()["id"]
    log: list[JSON] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        after = log[-1]["seq"] if log else 0
        answer = await http.get(f"/v1/orgs/{wake.org}/events", params={"after": after, "wait": 5})
        answer.raise_for_status()
        for event in answer.json()["events"]:
            log.append(event)
            if event["args"].get("linkId") != wake.link_id:
                continue
            if event["name"] == STARTED:
                wake.wake_ms = round((_epoch(event["args"]["updatedAt"]) - wake.sent_epoch) * 1000, 1)
            elif event["name"] in TERMINAL:
                wake.terminal_at = time.monotonic()
                return log
    raise TimeoutError(f"{wake.org}: link {wake.link_id} not terminal within {timeout:.0f} s")


async def cycle_org(
    org: str,
    token: str,
    base: str,
    page_base: str,
    watch: Watch,
    slots: asyncio.Semaphore,
    wakes: list[Wake],
    logs: dict[str, list[JSON]],
    budget: tuple[int, float],
    timeout: float,
) -> None:
    """One org's life: wake it with a save, let it finish and hibernate, again until the budget is spent.

    The log each wake reads (from the first event to its link's terminal one)
    is kept for the audit: reading it again at the end would wake every org once more.
    """
    most, until = budget
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=timeout) as http:
        for number in range(most):
            wake = Wake(org, number)
            async with slots:
                # Checked once a slot is free: orgs queue for one, and a queue can outlast the budget.
                if time.monotonic() > until:
                    return
                logs[org] = await wake_once(http, wake, page_base, timeout)
            wakes.append(wake)
            await wait_until_hibernated(org, watch, wake.terminal_at, timeout)
            wake.hibernate_s = round(time.monotonic() - wake.terminal_at, 2)


def placement(watch: Watch) -> JSON:
    """Where Ray put the org actors: per node, the incarnations of each role and the most alive at once.

    The capacity model counts live orgs per node as if Ray spread them evenly;
    ``busiest_node_share`` says how far a run was from that (1/nodes is even).
    """
    from linkproc_ray.adapters.actors import backend_name

    nodes: dict[str, JSON] = {}
    for (name, _), node in watch.placed.items():
        counts = nodes.setdefault(node, {"node": node[:8], "backend": 0, "processor": 0})
        counts["backend" if name.startswith(backend_name("")) else "processor"] += 1
    for node, counts in nodes.items():
        counts["live_peak"] = watch.live_peak_by_node.get(node, 0)
    total = len(watch.placed)
    busiest = max((c["backend"] + c["processor"] for c in nodes.values()), default=0)
    return {
        "nodes_used": len(nodes),
        "by_node": sorted(nodes.values(), key=lambda c: -(c["backend"] + c["processor"])),
        "busiest_node_share": round(busiest / total, 3) if total else None,
    }


def creation_ms(wakes: list[Wake], started_ms: dict[str, set[int]]) -> tuple[dict[str, list[float]], int]:
    """Per role, how long each wake's actor took to be alive, and how many wakes found no new actor.

    The backend's is measured from the save being sent (the ingress creates
    it); the processor's from the backend being alive: what the wake waits
    for after its backend. The backend's poke creates the processor, or the
    ingress started it alongside (``LINKPROC_PREWAKES``), and then it may be
    alive first (a negative time). Each wake is matched with the org's first actor of that name
    that started after the save was sent. Every actor lives at least the idle
    TTL, so the twice-a-second view of live actors sees each one.
    """
    from linkproc_ray.adapters.actors import backend_name, processor_name

    starts = {name: sorted(ms / 1000 for ms in values) for name, values in started_ms.items()}
    times: dict[str, list[float]] = {"backend": [], "processor": []}
    reused = 0
    for wake in wakes:
        backend = next((t for t in starts.get(backend_name(wake.org), []) if t >= wake.sent_epoch), None)
        processor = next((t for t in starts.get(processor_name(wake.org), []) if t >= wake.sent_epoch), None)
        if backend is None or processor is None:
            reused += 1
            continue
        times["backend"].append(round((backend - wake.sent_epoch) * 1000, 1))
        times["processor"].append(round((processor - backend) * 1000, 1))
    return times, reused


def audit_orgs(logs: dict[str, list[JSON]], wakes: list[Wake], data_dir: Path) -> JSON:
    """Every saved link processed exactly once, by each org's log; and what an org keeps on disk."""
    lost = duplicates = events = 0
    for org, log in logs.items():
        audit = audit_log(log, {wake.link_id for wake in wakes if wake.org == org})
        lost += len(audit.lost)
        duplicates += len(audit.duplicates)
        events += len(log)
    org_bytes = sum(path.stat().st_size for path in data_dir.glob("orgs/*/*") if path.is_file())
    return {
        "lost": lost,
        "duplicates": duplicates,
        "events_per_link": round(events / max(1, len(wakes)), 2),
        "disk_bytes_per_org": round(org_bytes / max(1, len(logs))),
    }


def deciles(wakes: list[Wake]) -> JSON:
    """Wake latency over the whole run and in its first and last tenth (in the order the wakes ended)."""
    ordered = [wake.wake_ms for wake in sorted(wakes, key=lambda w: w.terminal_at)]
    tenth = max(1, len(ordered) // 10)

    def p50_p99(values: list[float]) -> JSON:
        stats = percentiles(values)
        return {"p50": stats["p50"], "p99": stats["p99"], "n": len(values)}

    return {
        "all": p50_p99(ordered),
        "first_decile": p50_p99(ordered[:tenth]),
        "last_decile": p50_p99(ordered[-tenth:]),
    }


def slope(xs: list[float], ys: list[float]) -> float | None:
    """The least-squares slope of ``ys`` against ``xs``; ``None`` for fewer than 3 points or no spread."""
    if len(xs) < 3 or max(xs) == min(xs):
        return None
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    rise = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return round(rise / sum((x - mean_x) ** 2 for x in xs), 1)


def per_entry_bytes(samples: list[JSON], cache_limit: int) -> float | None:
    """GCS bytes per actor entry: the least-squares slope of GCS RSS against entries.

    Only the samples past the first third of the run (warm-up) and before the
    dead entries reach the GCS's cache bound count: past the bound the entries
    stay put, and whatever else still moved would be charged to them.
    """
    below = [s for s in samples if s["dead_actor_entries"] < cache_limit]
    tail = below[len(below) // 3 :]
    xs = [float(s["actor_entries"]) for s in tail]
    ys = [float(s["gcs_rss_mb"]) * MIB for s in tail]
    return slope(xs, ys)


def per_wake_bytes_past_bounds(samples: list[JSON], cache_limit: int, series: str = "gcs_rss_mb") -> float | None:
    """GCS bytes each wake still adds once the dead actors are at their bound: what no setting bounds.

    The slope of ``series`` (MiB) against wakes over the samples taken at the
    bound; ``None`` when the run never reached it or did not record the series.
    """
    at_bound = [s for s in samples if s["dead_actor_entries"] >= cache_limit and series in s]
    xs = [float(s["wakes"]) for s in at_bound]
    ys = [float(s[series]) * MIB for s in at_bound]
    return slope(xs, ys)


GCS_COUNTS = {
    "destroyed_actors": r"Destroyed actors count: (\d+)",
    "long_polling_subscribers": r"current long-polling subscribers: (\d+)",
    "actor_channel_keys": r"GCS_ACTOR_CHANNEL\n(?:- .*\n)*?- current keyed subscription keys: (\d+)",
    "actor_channel_buffered_bytes": r"GCS_ACTOR_CHANNEL\n(?:- .*\n)*?- current buffered bytes: (\d+)",
    "task_events_stored": r"Current num of task events stored: (\d+)",
}
"""What the GCS's once-a-minute debug dump (``gcs_server.out``) says it holds: the tables RSS alone cannot name."""


def gcs_debug_counts(log_text: str) -> list[dict[str, int]]:
    """The :data:`GCS_COUNTS` of every debug dump in ``log_text``, oldest first (a count a dump lacks is left out)."""
    dumps = log_text.split("Gcs Debug state:")[1:]
    counts = []
    for dump in dumps:
        found = {name: re.search(pattern, dump) for name, pattern in GCS_COUNTS.items()}
        counts.append({name: int(match.group(1)) for name, match in found.items() if match})
    return counts


def flags(samples: list[JSON], wakes: list[Wake], cache_limit: int) -> JSON:
    """Which series still grow in the last third; the actor entries are judged against their cache bound."""
    by_time = sorted(wakes, key=lambda w: w.terminal_at)
    window = max(1, len(by_time) // 30)
    rolling = [
        sorted(w.wake_ms for w in by_time[i : i + window])[len(by_time[i : i + window]) // 2]
        for i in range(0, len(by_time), window)
    ]
    entries = [float(s["actor_entries"]) for s in samples]
    judged = {
        "gcs_rss_mb": growth([float(s["gcs_rss_mb"]) for s in samples], floor=5.0),
        "raylet_rss_mb": growth([float(s["raylet_rss_mb"]) for s in samples], floor=5.0),
        "wake_ms_p50": growth(rolling, floor=100.0, share=0.2),
        "actor_entries": growth(entries, floor=50.0),
        "function_table_kb": growth([float(s["function_table_kb"]) for s in samples], floor=100.0),
        "agent_rss_mb": growth([float(s["agent_rss_mb"]) for s in samples], floor=5.0),
        "metric_series": growth(
            [float(s["metric_series"]) for s in samples if s["metric_series"] is not None], floor=50.0
        ),
    }
    # Dead entries grow by design until the GCS's cache holds its limit; past it they level off.
    judged["actor_entries"]["bounded_by"] = cache_limit
    judged["actor_entries"]["below_bound"] = bool(entries) and max(entries) < cache_limit
    return judged


def plot(path: Path, samples: list[JSON], wakes: list[Wake], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    x = [s["wakes"] for s in samples]
    axes[0].plot(x, [s["gcs_rss_mb"] for s in samples], label="GCS")
    axes[0].plot(x, [s["gcs_anon_mb"] for s in samples], label="GCS, anonymous (heap)")
    axes[0].plot(x, [s["raylet_rss_mb"] for s in samples], label="raylet")
    axes[0].plot(x, [s["ingress_rss_mb"] for s in samples], label="ingress replica")
    axes[0].plot(x, [s["agent_rss_mb"] for s in samples], label="DashboardAgent")
    axes[0].set_ylabel("RSS (MiB)")
    axes[0].legend()
    axes[1].plot(x, [s["actor_entries"] for s in samples], label="all entries")
    axes[1].plot(x, [s["dead_actor_entries"] for s in samples], label="dead")
    axes[1].set_ylabel("GCS actor entries")
    axes[1].legend()
    ordered = sorted(wakes, key=lambda w: w.terminal_at)
    axes[2].scatter(range(len(ordered)), [w.wake_ms for w in ordered], s=4)
    axes[2].set_ylabel("wake: save -> Started (ms)")
    axes[2].set_xlabel("wakes done")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(result: JSON) -> str:
    wake = result["wake_ms"]
    rows = [
        "| measured | value |",
        "| --- | ---: |",
        f"| orgs / wakes | {result['orgs']} / {result['wakes']} |",
        f"| wakes per second | {result['wakes_per_s']} |",
        f"| cluster CPU per wake | {result['cpu_s_per_wake']} s |",
        f"| wake ms p50 / p99 (all) | {wake['all']['p50']} / {wake['all']['p99']} |",
        f"| wake ms p50 / p99 (first decile) | {wake['first_decile']['p50']} / {wake['first_decile']['p99']} |",
        f"| wake ms p50 / p99 (last decile) | {wake['last_decile']['p50']} / {wake['last_decile']['p99']} |",
        f"| backend created ms p50 / p99 | {result['actor_create_ms']['backend']['p50']}"
        f" / {result['actor_create_ms']['backend']['p99']} |",
        f"| processor created ms p50 / p99 | {result['actor_create_ms']['processor']['p50']}"
        f" / {result['actor_create_ms']['processor']['p99']} |",
        f"| GCS RSS MiB start -> end | {result['gcs_rss_mb']['start']} -> {result['gcs_rss_mb']['end']} |",
        f"| raylet RSS MiB start -> end | {result['raylet_rss_mb']['start']} -> {result['raylet_rss_mb']['end']} |",
        f"| ingress RSS MiB start -> end | {result['ingress_rss_mb']['start']} -> {result['ingress_rss_mb']['end']} |",
        f"| ingress replicas seen (recycled after {result['ingress_recycle_after']} wakes) |"
        f" {result['ingress_replicas_seen']} |",
        f"| DashboardAgent RSS MiB start -> end | {result['agent_rss_mb']['start']} -> {result['agent_rss_mb']['end']} |",
        *(
            f"| {helper} share of a core, first / middle / last third | {share['first']} / {share['middle']}"
            f" / {share['last']} |"
            for helper, share in result["helper_cpu_share"].items()
        ),
        f"| files in the log directory start -> end | {result['log_dir_entries']['start']}"
        f" -> {result['log_dir_entries']['end']} |",
        f"| metric series on the nodes start -> end (linkproc_ at the end) | {result['metric_series']['start']}"
        f" -> {result['metric_series']['end']} ({result['metric_series']['linkproc_end']}) |",
        f"| GCS actor entries start -> end | {result['actor_entries']['start']} -> {result['actor_entries']['end']} |",
        f"| GCS function table entries / KB start -> end | {result['function_table']['start']} -> "
        f"{result['function_table']['end']} |",
        f"| GCS bytes per actor entry | {result['gcs_bytes_per_actor_entry']} |",
        f"| GCS bytes per wake once the dead actors are at their bound | {result['gcs_bytes_per_wake_past_bounds']} |",
        f"| of them anonymous (heap, not the binary's pages) | {result['gcs_anon_bytes_per_wake_past_bounds']} |",
        *(
            f"| GCS's own count: {name.replace('_', ' ')}, first -> last dump | {first} -> {last.get(name)} |"
            for name, first in result["gcs_debug_counts"]["first"].items()
            for last in [result["gcs_debug_counts"]["last"]]
        ),
        *(
            f"| org actors on node {n['node']}: backends / processors / most alive at once |"
            f" {n['backend']} / {n['processor']} / {n['live_peak']} |"
            for n in result["placement"]["by_node"]
        ),
        f"| lost / duplicates / wakes that found actors alive | {result['lost']} / {result['duplicates']}"
        f" / {result['wakes_without_new_actors']} |",
    ]
    flagged = [name for name, verdict in result["growth"].items() if verdict["flagged"]]
    rows.append(f"| still growing in the last third | {', '.join(flagged) or 'nothing'} |")
    return "\n".join(rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 orgs x 5 wakes (1,000 wakes)")
    parser.add_argument("--orgs", type=int, help="orgs (default 200 quick, 400 full)")
    parser.add_argument("--wakes-per-org", type=int, help="wakes per org (default 5 quick, no limit full)")
    parser.add_argument("--minutes", type=float, help="stop starting wakes after this long (default 30 full)")
    parser.add_argument("--idle-ttl", type=float, default=2.0, help="seconds an idle org actor lives on")
    parser.add_argument(
        "--ingress-recycle-after",
        type=int,
        help="org wakes an ingress replica serves before Serve replaces it (default: the project's)",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="orgs waking at the same time")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples of the GCS")
    parser.add_argument(
        "--ray-config",
        type=json.loads,
        default={},
        help="Ray system settings over the project's, as JSON: '{\"maximum_gcs_destroyed_actor_cached_count\": 100}'",
    )
    parser.add_argument(
        "--worker-nodes",
        type=int,
        default=0,
        help="run on a small local cluster: a head without CPUs and this many raylets sharing the cores (default: one node)",
    )
    parser.add_argument(
        "--worker-node-memory-mib", type=int, help="memory each of those raylets offers Ray's scheduler (default: all)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one wake or hibernation may take")
    parser.add_argument("--out", type=Path, default=RESULTS)
    options = parser.parse_args(argv)
    options.orgs = options.orgs or (200 if options.quick else 400)
    options.wakes_per_org = options.wakes_per_org or (5 if options.quick else 1_000_000)
    options.minutes = options.minutes or (60.0 if options.quick else 30.0)
    return options


async def churn(
    options: argparse.Namespace, base: str, page_base: str, tokens: dict[str, str], data_dir: Path, cache_limit: int
) -> JSON:
    wakes: list[Wake] = []
    logs: dict[str, list[JSON]] = {}
    watch = Watch()
    started = time.monotonic()
    halt = asyncio.Event()
    watcher = asyncio.ensure_future(watch_cluster(watch, wakes, options.sample, started, halt))
    slots = asyncio.Semaphore(options.concurrency)
    budget = (options.wakes_per_org, started + options.minutes * 60)

    async def progress() -> None:
        while not halt.is_set():
            await asyncio.sleep(30)
            print(f"  {time.monotonic() - started:6.0f} s: {len(wakes)} wakes done", flush=True)

    reporter = asyncio.ensure_future(progress())
    try:
        await asyncio.gather(
            *(
                cycle_org(org, token, base, page_base, watch, slots, wakes, logs, budget, options.timeout)
                for org, token in tokens.items()
            )
        )
    finally:
        elapsed = time.monotonic() - started
        halt.set()
        await asyncio.gather(watcher, reporter)
    watch.samples.append(await asyncio.to_thread(sample, watch, len(wakes), started))
    created, reused = creation_ms(wakes, watch.started_ms)
    audit = audit_orgs(logs, wakes, data_dir)
    samples = watch.samples
    return {
        "wakes": len(wakes),
        "elapsed_s": round(elapsed, 1),
        "wakes_per_s": round(len(wakes) / elapsed, 3),
        "cpu_s_per_wake": round(samples[-1]["cluster_cpu_s"] / max(1, len(wakes)), 3),
        "wake_ms": deciles(wakes),
        "post_ms": percentiles([w.post_ms for w in wakes]),
        "hibernate_s": percentiles([w.hibernate_s for w in wakes]),
        "actor_create_ms": {role: percentiles(values) for role, values in created.items()},
        "wakes_without_new_actors": reused,
        "gcs_rss_mb": {"start": samples[0]["gcs_rss_mb"], "end": samples[-1]["gcs_rss_mb"]},
        "gcs_anon_mb": {"start": samples[0]["gcs_anon_mb"], "end": samples[-1]["gcs_anon_mb"]},
        "raylet_rss_mb": {"start": samples[0]["raylet_rss_mb"], "end": samples[-1]["raylet_rss_mb"]},
        "ingress_rss_mb": {"start": samples[0]["ingress_rss_mb"], "end": samples[-1]["ingress_rss_mb"]},
        "ingress_replicas_seen": len(watch.ingress_pids),
        "agent_rss_mb": {"start": samples[0]["agent_rss_mb"], "end": samples[-1]["agent_rss_mb"]},
        "helper_cpu_share": {
            "DashboardAgent": cpu_share_by_third(samples, "agent_cpu_s"),
            "log monitor": cpu_share_by_third(samples, "log_monitor_cpu_s"),
        },
        "log_dir_entries": {"start": samples[0]["log_dir_entries"], "end": samples[-1]["log_dir_entries"]},
        "metric_series": {
            "start": samples[0]["metric_series"],
            "end": samples[-1]["metric_series"],
            "linkproc_end": samples[-1]["linkproc_metric_series"],
        },
        "placement": placement(watch),
        "function_table": {
            "start": [samples[0]["function_table_entries"], samples[0]["function_table_kb"]],
            "end": [samples[-1]["function_table_entries"], samples[-1]["function_table_kb"]],
        },
        "actor_entries": {
            "start": samples[0]["actor_entries"],
            "end": samples[-1]["actor_entries"],
            "dead_end": samples[-1]["dead_actor_entries"],
        },
        "gcs_bytes_per_actor_entry": per_entry_bytes(samples, cache_limit),
        "gcs_bytes_per_wake_past_bounds": per_wake_bytes_past_bounds(samples, cache_limit),
        "gcs_anon_bytes_per_wake_past_bounds": per_wake_bytes_past_bounds(samples, cache_limit, "gcs_anon_mb"),
        **audit,
        "samples": samples,
        "_wakes": wakes,
    }


def cluster_gcs_debug_counts() -> list[dict[str, int]]:
    """:func:`gcs_debug_counts` of every dump this process's cluster's GCS has written so far."""
    import ray

    log = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs" / "gcs_server.out"
    return gcs_debug_counts(log.read_text(encoding="utf-8", errors="replace"))


def read_gcs_debug_counts() -> JSON:
    """The first and last of this cluster's GCS debug dumps (see :func:`gcs_debug_counts`)."""
    counts = cluster_gcs_debug_counts()
    return {"dumps": len(counts), "first": counts[0] if counts else {}, "last": counts[-1] if counts else {}}


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    from linkproc_ray.adapters.local import RAY_SYSTEM_CONFIG
    from linkproc_ray.api.auth import issue_token
    from linkproc_ray.config import load_settings

    system_config = {**RAY_SYSTEM_CONFIG, **options.ray_config}
    cache_limit = int(system_config.get("maximum_gcs_destroyed_actor_cached_count", 100_000))
    run_id = uuid.uuid4().hex[:6]
    orgs = [f"churn-{run_id}-{i}" for i in range(options.orgs)]
    data_dir = Path(tempfile.mkdtemp(prefix="linkproc-churn-"))
    with PageProcess("127.0.0.1", 0.0, 0, 0) as pages:
        overrides = {
            "data_dir": str(data_dir),
            "jwt_secret": SECRET,
            "fetch_allow_hosts": pages.base.removeprefix("http://"),
            "serve_app_name": APP_NAME,
            "idle_ttl": options.idle_ttl,
            **({"ingress_recycle_after": options.ingress_recycle_after} if options.ingress_recycle_after else {}),
        }
        settings = load_settings(**overrides)
        tokens = {org: issue_token(settings, org, ttl=4 * 3600) for org in orgs}
        try:
            with local_system(
                overrides,
                app_name=APP_NAME,
                route_prefix=ROUTE_PREFIX,
                ray_config=options.ray_config,
                worker_nodes=options.worker_nodes,
                worker_memory_mib=options.worker_node_memory_mib,
            ) as base:
                print(
                    f"churn: {options.orgs} orgs, up to {options.wakes_per_org} wakes each, idle TTL"
                    f" {options.idle_ttl:g} s, {options.concurrency} waking at once",
                    flush=True,
                )
                outcome = asyncio.run(churn(options, base, pages.base, tokens, data_dir, cache_limit))
                outcome["gcs_debug_counts"] = read_gcs_debug_counts()
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)

    wakes: list[Wake] = outcome.pop("_wakes")
    result: JSON = {
        "mode": "quick" if options.quick else "full",
        "orgs": options.orgs,
        "idle_ttl_s": options.idle_ttl,
        "concurrency": options.concurrency,
        "worker_nodes": options.worker_nodes,
        "worker_node_memory_mib": options.worker_node_memory_mib,
        "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB",
        "destroyed_actor_cache": cache_limit,
        "ingress_recycle_after": settings.ingress_recycle_after,
        **outcome,
        "growth": flags(outcome["samples"], wakes, cache_limit),
        "ray_system_config": system_config,
    }
    stem = ("churn-quick" if options.quick else "churn") + (
        f"-{options.worker_nodes}-nodes" if options.worker_nodes else ""
    )
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(
        options.out / f"{stem}.png", outcome["samples"], wakes, f"churn: {result['orgs']} orgs, {result['wakes']} wakes"
    )
    print()
    print(markdown(result))
    print(f"\nwritten to {options.out / (stem + '.json')} and {options.out / (stem + '.png')}")
    return 1 if result["lost"] or result["duplicates"] or result["wakes_without_new_actors"] else 0


if __name__ == "__main__":
    sys.exit(main())
