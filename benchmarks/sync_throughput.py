"""Accepted events/s through the real Serve app (WebSocket and REST, 1 and 4 orgs, batches of 1 and 100).

Next to it, in the same run and on the same disk, the raw rate of aiosqlite with
the backend's commit policy (WAL, synchronous=FULL, one transaction per batch),
so the cost of Ray, Serve and the protocol is visible as a ratio.

    python benchmarks/sync_throughput.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import httpx
import websockets
from tqdm import tqdm

from linkproc_ray.core import events as ev
from linkproc_ray.core.events import NewEvent, new_id

RESULTS = Path(__file__).parent / "results" / "sync_throughput.json"
SECRET = "benchmark-secret-that-is-long-enough-for-hs256"


@dataclass(frozen=True)
class Case:
    transport: str  # "ws", "rest" or "raw_sqlite"
    orgs: int
    batch: int
    events: int
    seconds: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def make_batch(size: int) -> list[dict[str, Any]]:
    """Small real events (TagCreated): they do not poke the processor, so only sync is measured."""
    batch = []
    for _ in range(size):
        tag = new_id()
        args = {"id": tag, "name": f"tag-{tag[:8]}", "createdAt": "2026-01-01T00:00:00Z"}
        batch.append(NewEvent(new_id(), ev.TagCreated.NAME, args, "bench", "bench").to_json())
    return batch


async def ws_writer(base: str, org: str, token: str, batch: int, pushes: int) -> None:
    """One client pushing at the head, one push in flight at a time (the SDK's pattern)."""
    url = f"{base.replace('http', 'ws', 1)}/v1/orgs/{org}/sync?token={token}"
    async with websockets.connect(url, max_size=None) as socket:
        head = json.loads(await socket.recv())["head"]
        accepted = 0
        while accepted < pushes:
            await socket.send(
                json.dumps({"type": "push", "requestId": accepted, "parent": head, "events": make_batch(batch)})
            )
            while (answer := json.loads(await socket.recv()))["type"] == "events":
                pass
            if answer["type"] == "push_ok":
                accepted += 1
            elif answer.get("error") != "server_ahead":
                raise RuntimeError(f"push refused: {answer}")
            head = answer["head"]


async def rest_writer(base: str, org: str, token: str, batch: int, pushes: int) -> None:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        head = (await http.get(f"/v1/orgs/{org}/events", params={"limit": 1})).json()["head"]
        accepted = 0
        while accepted < pushes:
            response = await http.post(f"/v1/orgs/{org}/events", json={"parent": head, "events": make_batch(batch)})
            if response.status_code != 409:
                response.raise_for_status()
                accepted += 1
            head = response.json()["head"]


async def raw_sqlite(path: Path, batch: int, pushes: int) -> None:
    """The same commit policy with nothing in front of it: the ceiling of one org's disk writes."""
    async with aiosqlite.connect(path, isolation_level=None) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        await db.execute(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, parent INTEGER NOT NULL, id TEXT NOT NULL UNIQUE, "
            "name TEXT NOT NULL, args TEXT NOT NULL, client_id TEXT NOT NULL, session_id TEXT NOT NULL)"
        )
        seq = 0
        for _ in range(pushes):
            rows = []
            for event in make_batch(batch):
                seq += 1
                rows.append((seq, seq - 1, event["id"], event["name"], json.dumps(event["args"]), "bench", "bench"))
            await db.execute("BEGIN IMMEDIATE")
            await db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            await db.execute("COMMIT")


async def run_cases(
    base: str, tokens: dict[str, str], data_dir: Path, events_per_org: dict[int, int], bar: tqdm
) -> list[Case]:
    cases: list[Case] = []
    round_ = 0
    for batch, total in events_per_org.items():
        pushes = total // batch
        raw_started = time.perf_counter()
        await raw_sqlite(data_dir / f"raw-{batch}.sqlite", batch, pushes)
        cases.append(Case("raw_sqlite", 1, batch, pushes * batch, time.perf_counter() - raw_started))
        bar.update(pushes * batch)
        for transport, writer in (("ws", ws_writer), ("rest", rest_writer)):
            for orgs in (1, 4):
                round_ += 1
                names = [f"bench{round_}-{i}" for i in range(orgs)]
                started = time.perf_counter()
                await asyncio.gather(*(writer(base, org, tokens[org], batch, pushes) for org in names))
                cases.append(Case(transport, orgs, batch, orgs * pushes * batch, time.perf_counter() - started))
                bar.update(orgs * pushes * batch)
    return cases


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer events per case (about a minute here)")
    parser.add_argument("--address", help="attach to this Ray cluster instead of starting a local one")
    parser.add_argument("--port", type=int, default=None, help="HTTP port of the Serve app (default: a free one)")
    args = parser.parse_args()

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray import serve

    from linkproc_ray.adapters.front_door import local_front_door, ray_environment
    from linkproc_ray.adapters.serve import build_app
    from linkproc_ray.api.auth import issue_token
    from linkproc_ray.config import NAMESPACE, load_settings

    # The org files and the raw SQLite file share one directory, so one disk.
    data_dir = Path(tempfile.mkdtemp(prefix="linkproc-bench-"))
    overrides = {"data_dir": str(data_dir), "jwt_secret": SECRET}
    settings = load_settings(**overrides)
    events_per_org = {1: 200, 100: 3000} if args.quick else {1: 1000, 100: 20000}

    port = args.port or free_port()
    with ray_environment({} if args.address else local_front_door()):  # the front door `linkproc up` has
        ray.init(address=args.address or "local", namespace=NAMESPACE, include_dashboard=False, logging_level="WARNING")
    serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config={"enable_access_log": False})
    serve.run(build_app(overrides), name=settings.serve_app_name, route_prefix="/")
    base = f"http://127.0.0.1:{port}"
    rounds = len(events_per_org) * 4
    tokens = {f"bench{r}-{i}": issue_token(settings, f"bench{r}-{i}") for r in range(1, rounds + 1) for i in range(4)}
    total = sum(n * (1 + 2 * (1 + 4)) for n in events_per_org.values())
    try:
        with tqdm(total=total, unit="ev", desc="sync throughput") as bar:
            cases = asyncio.run(run_cases(base, tokens, data_dir, events_per_org, bar))
    finally:
        serve.shutdown()
        ray.shutdown()

    def rate(transport: str, orgs: int = 1, batch: int = 100) -> float:
        return next(c.events_per_s for c in cases if (c.transport, c.orgs, c.batch) == (transport, orgs, batch))

    # Headline: one org, batches of 100, one writer: the same shape as the raw loop.
    summary = {
        "ws_events_per_s": round(rate("ws"), 1),
        "rest_events_per_s": round(rate("rest"), 1),
        "raw_sqlite_events_per_s": round(rate("raw_sqlite"), 1),
        "ratio_ws_to_raw": round(rate("ws") / rate("raw_sqlite"), 4),
        "mode": "quick" if args.quick else "full",
        "cases": [{**asdict(c), "events_per_s": round(c.events_per_s, 1)} for c in cases],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print("\n| transport | orgs | batch | events | seconds | events/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for c in cases:
        print(f"| {c.transport} | {c.orgs} | {c.batch} | {c.events} | {c.seconds:.2f} | {c.events_per_s:,.0f} |")
    print(f"\nws/raw = {summary['ratio_ws_to_raw']}; written to {RESULTS}")


if __name__ == "__main__":
    main()
