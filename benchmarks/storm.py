"""The Monday-morning storm: many cold orgs save a few links in the same second.

Every org starts cold (no actor), so its first save waits for its backend
actor to be created; processors follow. The run measures what a user sees
(POST latency), how long until every link is terminal, the peak memory of
every process of the system, how long each org's actors took to start, and
then, with the orgs still live but idle, the CPU they cost doing nothing.

    python benchmarks/storm.py --quick          # 30 orgs x 2 links, 30 s idle window
    python benchmarks/storm.py                  # 30 orgs x 3 links, 60 s idle window
    python benchmarks/storm.py --orgs 60 --links 2

Writes benchmarks/results/storm.json and storm.png and prints a markdown table.
Exits 1 on any lost or duplicated link.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.burst import (  # noqa: E402 - after the path set-up above
    JSON,
    CpuMeter,
    PageProcess,
    audit_log,
    percentiles,
    pull_log,
    ray_processes,
)
from benchmarks.local_system import local_system  # noqa: E402
from benchmarks.ray_floor import cores_used, cpu_seconds, start_empty_actors  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SECRET = "storm-benchmark-secret-that-is-long-enough-for-hs256"
APP_NAME = "linkproc-storm"
ROUTE_PREFIX = "/storm"


class Sampler(threading.Thread):
    """Total RSS of this node's Ray processes over time, twice a second."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="storm-sampler")
        self.cpu = CpuMeter()
        self.samples: list[tuple[float, float]] = []
        self._halt = threading.Event()
        self.started = time.perf_counter()

    def run(self) -> None:
        while not self._halt.wait(0.5):
            rss = self.cpu.sample(ray_processes())
            self.samples.append((time.perf_counter() - self.started, rss / 2**20))

    def stop(self) -> None:
        self._halt.set()
        self.join()

    @property
    def peak_mb(self) -> float:
        return max((mb for _, mb in self.samples), default=0.0)


def org_actor_pids(orgs: Sequence[str]) -> dict[str, dict[str, int]]:
    """``{org: {"backend": pid, "processor": pid}}`` for the orgs' live actors on this node, from the GCS."""
    import ray

    from linkproc_ray.adapters.actors import backend_name, processor_name

    names = {backend_name(org): (org, "backend") for org in orgs} | {
        processor_name(org): (org, "processor") for org in orgs
    }
    pids: dict[str, dict[str, int]] = {}
    for actor in ray._private.state.actors().values():
        if actor["State"] == "ALIVE" and actor["Name"] in names:
            org, role = names[actor["Name"]]
            pids.setdefault(org, {})[role] = actor["Pid"]
    return pids


def actor_start_ms(orgs: Sequence[str], first_post_epoch: dict[str, float]) -> dict[str, list[float]]:
    """Per role, from an org's first save being sent to its actor being alive (the GCS's ``StartTime``)."""
    import ray

    from linkproc_ray.adapters.actors import backend_name, processor_name

    roles = {backend_name(org): (org, "backend") for org in orgs} | {
        processor_name(org): (org, "processor") for org in orgs
    }
    times: dict[str, list[float]] = {"backend": [], "processor": []}
    for actor in ray._private.state.actors().values():
        if actor["Name"] in roles and actor["State"] == "ALIVE" and actor.get("StartTime"):
            org, role = roles[actor["Name"]]
            if org in first_post_epoch:
                times[role].append(float(actor["StartTime"]) - first_post_epoch[org] * 1000)
    return times


def memory_by_role(pids: dict[str, dict[str, int]]) -> dict[str, JSON]:
    """RSS, PSS and USS per actor role (MiB), mean over orgs: what one live org costs."""
    import psutil

    sums: dict[str, dict[str, list[float]]] = {}
    for roles in pids.values():
        for role, pid in roles.items():
            try:
                info = psutil.Process(pid).memory_full_info()
            except psutil.NoSuchProcess:
                continue
            bucket = sums.setdefault(role, {"rss": [], "pss": [], "uss": []})
            for key in ("rss", "pss", "uss"):
                bucket[key].append(getattr(info, key) / 2**20)
    return {
        role: {key: round(sum(values) / len(values), 1) for key, values in bucket.items() if values}
        for role, bucket in sums.items()
    }


def idle_cpu_per_org(pids: dict[str, dict[str, int]], seconds: float, floor_actors: int = 4) -> dict[str, Any]:
    """Cores each live org's two actors use while nobody saves anything, over ``seconds``.

    A few empty Ray actors idle in the same window: their CPU is Ray's floor,
    which an org pair pays twice whatever our code does.
    """
    _empty, empty_pids = start_empty_actors(floor_actors)
    time.sleep(2)  # the empty actors' own start-up is not idling
    org_pids = [pid for roles in pids.values() for pid in roles.values()]
    before = cpu_seconds([*org_pids, *empty_pids])
    time.sleep(seconds)
    after = cpu_seconds([*org_pids, *empty_pids])
    per_org = [cores_used(before, after, roles.values(), seconds) for roles in pids.values()]
    mean = sum(per_org) / len(per_org) if per_org else 0.0
    floor_per_pair = 2 * cores_used(before, after, empty_pids, seconds) / len(empty_pids)
    return {
        "seconds": seconds,
        "orgs": len(per_org),
        "mean_cores": round(mean, 5),
        "max_cores": round(max(per_org, default=0.0), 5),
        "percent_of_a_core": round(100 * mean, 3),
        "ray_floor_percent_per_pair": round(100 * floor_per_pair, 3),
        "above_floor_percent": round(100 * (mean - floor_per_pair), 3),
    }


async def storm(base: str, tokens: dict[str, str], urls: dict[str, list[str]], timeout: float) -> JSON:
    """Every org's links saved at once; then wait until every link is terminal; read every log back."""
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
        posts: list[JSON] = []

        async def save(org: str, url: str) -> None:
            sent, sent_epoch = time.perf_counter(), time.time()
            response = await http.post(
                f"/v1/orgs/{org}/links", json={"url": url}, headers={"Authorization": f"Bearer {tokens[org]}"}
            )
            body = response.json()
            posts.append(
                {
                    "org": org,
                    "status": response.status_code,
                    "id": body.get("id"),
                    "ms": (time.perf_counter() - sent) * 1000,
                    "sent_epoch": sent_epoch,
                }
            )

        started = time.perf_counter()
        wall_start = time.time()
        await asyncio.gather(*(save(org, url) for org, org_urls in urls.items() for url in org_urls))
        posted_s = time.perf_counter() - started
        ids = {org: {p["id"] for p in posts if p["org"] == org and p["id"]} for org in urls}
        deadline = started + timeout
        logs: dict[str, list[JSON]] = {}
        remaining = set(urls)
        while remaining and time.perf_counter() < deadline:
            for org in list(remaining):
                client = _Scoped(http, tokens[org])
                logs[org] = await pull_log(client, org)  # type: ignore[arg-type]
                if not audit_log(logs[org], ids[org]).lost:
                    remaining.discard(org)
            if remaining:
                await asyncio.sleep(1.0)
        for org in urls:
            logs[org] = await pull_log(_Scoped(http, tokens[org]), org)  # type: ignore[arg-type]
    audits = {org: audit_log(logs[org], ids[org]) for org in urls}
    terminal_at = [_epoch(event["args"]["updatedAt"]) for audit in audits.values() for event in audit.terminal.values()]
    return {
        "posts": posts,
        "posted_s": posted_s,
        "drain_s": round(max(terminal_at, default=wall_start) - wall_start, 2),
        "lost": sum(len(a.lost) for a in audits.values()),
        "duplicates": sum(len(a.duplicates) for a in audits.values()),
        "failed": sum(
            1 for a in audits.values() for e in a.terminal.values() if e["name"] != "v1.LinkProcessingCompleted"
        ),
    }


class _Scoped:
    """The shared client with one org's token, for ``pull_log``."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self._http = http
        self._headers = {"Authorization": f"Bearer {token}"}

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self._http.get(url, headers=self._headers, **kwargs)


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def plot(path: Path, posts: list[JSON], samples: list[tuple[float, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (latency, memory) = plt.subplots(1, 2, figsize=(12, 4.5))
    ordered = sorted(p["ms"] for p in posts)
    latency.step(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], where="post")
    latency.set(xlabel="POST /links latency (ms)", ylabel="fraction of saves", title="Saves during the storm")
    latency.grid(alpha=0.3)
    memory.plot([t for t, _ in samples], [mb for _, mb in samples])
    memory.set(xlabel="seconds", ylabel="MiB", title="RSS of every Ray process of the node")
    memory.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(result: JSON) -> str:
    def trio(p: JSON) -> str:
        return " / ".join("–" if p[k] is None else f"{p[k]:,.0f}" for k in ("p50", "p95", "p99"))

    roles = result["memory_mb_by_role"]
    rows = [
        ("orgs × links", f"{result['orgs']} × {result['links_per_org']}"),
        ("POST p50 / p95 / p99 ms", trio(result["post_ms"])),
        ("an org's first POST (creates its backend) p50 / p95 / p99 ms", trio(result["first_post_ms"])),
        ("every link terminal after (s)", f"{result['drain_s']:.1f}"),
        ("peak RSS of every Ray process (MiB)", f"{result['peak_rss_mb']:,.0f}"),
        ("backend start ms p50 / p95 / p99", trio(result["actor_start_ms"]["backend"])),
        ("processor start ms p50 / p95 / p99", trio(result["actor_start_ms"]["processor"])),
        *(
            (f"{role} RSS / PSS / USS MiB", f"{m.get('rss', 0):.0f} / {m.get('pss', 0):.0f} / {m.get('uss', 0):.0f}")
            for role, m in roles.items()
        ),
        ("idle CPU per live org (% of a core)", f"{result['idle_cpu_per_org']['percent_of_a_core']:.2f}"),
        ("  of it Ray's floor (two empty actors)", f"{result['idle_cpu_per_org']['ray_floor_percent_per_pair']:.2f}"),
        ("lost / duplicates / failed", f"{result['lost']} / {result['duplicates']} / {result['failed']}"),
    ]
    return "\n".join(["| | storm |", "| --- | ---: |", *(f"| {name} | {value} |" for name, value in rows)])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="30 orgs x 2 links, 30 s idle window")
    parser.add_argument("--orgs", type=int, default=30, help="cold orgs saving at once")
    parser.add_argument("--links", type=int, help="links each org saves (2 with --quick, else 3)")
    parser.add_argument("--idle", type=float, help="seconds of the idle-CPU window (30 with --quick, else 60)")
    parser.add_argument("--page-delay-ms", type=float, default=100.0, help="the page server's delay per request")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds until unfinished links count as lost")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS)
    options = parser.parse_args(argv)
    options.links = options.links or (2 if options.quick else 3)
    options.idle = options.idle if options.idle is not None else (30.0 if options.quick else 60.0)
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    from tests.pages import article_ids

    from linkproc_ray.adapters.front_door import local_front_door_kind
    from linkproc_ray.adapters.local import RAY_SYSTEM_CONFIG
    from linkproc_ray.api.auth import issue_token
    from linkproc_ray.config import load_settings

    run_id = uuid.uuid4().hex[:6]
    orgs = [f"storm-{run_id}-{i}" for i in range(options.orgs)]
    articles = article_ids()
    data_dir = Path(tempfile.mkdtemp(prefix="linkproc-storm-"))
    with PageProcess("127.0.0.1", options.page_delay_ms / 1000, 0, options.seed) as pages:
        overrides = {
            "data_dir": str(data_dir),
            "jwt_secret": SECRET,
            "fetch_allow_hosts": pages.base.removeprefix("http://"),
            "serve_app_name": APP_NAME,
            "idle_ttl": 3600.0,  # the orgs stay live for the idle window
        }
        settings = load_settings(**overrides)
        warmup = f"storm-{run_id}-warmup"
        tokens = {org: issue_token(settings, org, ttl=3600) for org in [*orgs, warmup]}
        urls = {
            org: [
                f"{pages.base}/articles/{articles[(i * options.links + k) % len(articles)]}"
                for k in range(options.links)
            ]
            for i, org in enumerate(orgs)
        }
        try:
            with local_system(overrides, app_name=APP_NAME, route_prefix=ROUTE_PREFIX) as base:
                # A warm cluster (parse workers, the ingress), cold orgs: the storm is about orgs waking.
                asyncio.run(storm(base, tokens, {warmup: [f"{pages.base}/articles/{articles[-1]}"]}, options.timeout))
                print(f"storm: {options.orgs} cold orgs x {options.links} links at once", flush=True)
                sampler = Sampler()
                sampler.start()
                outcome = asyncio.run(storm(base, tokens, urls, options.timeout))
                sampler.stop()
                pids = org_actor_pids(orgs)
                first_sent: dict[str, float] = {}
                for post in outcome["posts"]:
                    first_sent[post["org"]] = min(first_sent.get(post["org"], post["sent_epoch"]), post["sent_epoch"])
                starts = actor_start_ms(orgs, first_sent)
                memory = memory_by_role(pids)
                print(f"drained in {outcome['drain_s']:.1f} s; measuring idle CPU for {options.idle:.0f} s", flush=True)
                idle = idle_cpu_per_org(pids, options.idle)
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)

    posts = outcome["posts"]
    first_posts: dict[str, float] = {}
    for post in posts:
        first_posts[post["org"]] = min(first_posts.get(post["org"], post["ms"]), post["ms"])
    result: JSON = {
        "mode": "quick" if options.quick else "full",
        "orgs": options.orgs,
        "links_per_org": options.links,
        "cpus": os.cpu_count(),
        "front_door": local_front_door_kind(),
        "post_ms": percentiles([p["ms"] for p in posts]),
        "first_post_ms": percentiles(list(first_posts.values())),
        "not_created": sum(p["status"] not in (200, 201) for p in posts),
        "drain_s": outcome["drain_s"],
        "peak_rss_mb": round(sampler.peak_mb, 1),
        "actor_start_ms": {role: percentiles(values) for role, values in starts.items()},
        "memory_mb_by_role": memory,
        "idle_cpu_per_org": idle,
        "lost": outcome["lost"],
        "duplicates": outcome["duplicates"],
        "failed": outcome["failed"],
        "ray_system_config": RAY_SYSTEM_CONFIG,
    }
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "storm.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(options.out / "storm.png", posts, sampler.samples)
    print()
    print(markdown(result))
    print(f"\nwritten to {options.out / 'storm.json'} and {options.out / 'storm.png'}")
    bad = result["lost"] or result["duplicates"] or result["not_created"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
