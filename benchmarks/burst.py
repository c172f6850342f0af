"""Rapid-link bursts across orgs through the real system, against the bare pipeline, with exactly-once checks.

For O orgs, concurrent clients save M links each in bursts (several links of
one org within milliseconds) through the Serve ingress; one more client per org
follows the org's log live (the WebSocket, or a long-poll follower when the
socket is not there). Every link must end in exactly one terminal event: the
run exits 1 on any duplicate or lost link. The same URLs then go through the
bare pipeline (the same fetch, parse and summarize code, one asyncio process,
parsing in a process pool as wide as the machine, no Ray, no events) and the
two are compared.

    python benchmarks/burst.py --quick                  # 3 orgs x 40 links, a local Ray cluster
    python benchmarks/burst.py                          # 10 orgs x 100 links
    python benchmarks/burst.py --quick --profile        # also py-spy every role: benchmarks/results/profile/
    python benchmarks/burst.py --machinery --quick      # one org, 600 links pushed as events, pages answer 404 at once
    python benchmarks/burst.py --address auto --page-host 10.0.0.5   # a running cluster

While the burst runs, a probe client in another org, live since the warm-up,
saves one link every 0.5 s: its POST latency is the save latency a user sees
under load.

Writes benchmarks/results/burst.json (machinery.json) and burst.png and prints
markdown tables: the run, and CPU per link by role against its budget.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import html
import json
import logging
import math
import multiprocessing
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Self

import httpx

from linkproc_ray.core import events as ev

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    # The page server and the articles dataset live in tests/pages.py.
    sys.path.insert(0, str(ROOT))

from benchmarks.local_system import free_port  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SECRET = "burst-benchmark-secret-that-is-long-enough-for-hs256"
APP_NAME = "linkproc-burst"
ROUTE_PREFIX = "/burst"
"""Its own Serve app and prefix, so attaching to a cluster never replaces the real ``linkproc`` app."""

TERMINAL = ev.TERMINAL_EVENTS
STARTED = ev.LinkProcessingStarted.NAME
RESUMED = ev.LinkProcessingResumed.NAME
SUMMARIZED = ev.LinkSummarized.NAME

JSON = dict[str, Any]


# -- pure helpers (unit-tested in tests/unit/test_burst_stats.py) -----------------------------


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99, interpolated between ranks (numpy's default), so a small sample is not pinned to its max."""
    ordered = sorted(values)
    result: dict[str, float | None] = {}
    for point in (50, 95, 99):
        if not ordered:
            result[f"p{point}"] = None
            continue
        rank = (len(ordered) - 1) * point / 100
        low, high = math.floor(rank), math.ceil(rank)
        result[f"p{point}"] = round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 1)
    return result


ROLE_BUDGET: dict[str, float] = {
    "task workers": 0.95,
    "batch dispatcher": 0.05,
    "LinkProcessorActor": 0.3,
    "SyncBackendActor": 0.2,
    "Ingress": 0.2,
    "proxy": 0.15,
    "Summarizer": 0.1,
    "other": 0.05,
}
"""CPU per link each role may spend, as a share of the bare pipeline's CPU per link (sum 2.0: the 2x target).

The parse tasks do the bare pipeline's work and may cost about what it costs
(with the node's dispatcher that submits them); the rest is the price of
events, sync and the ingress, split by where it is paid.
"""


def role_of(actor_class: str) -> str:
    """A process's role from its Ray actor class: Serve replicas by deployment, the front door (Serve's proxy or
    HAProxy and its manager), our actors, else other."""
    if actor_class.startswith("ServeReplica:"):
        return actor_class.rsplit(":", 1)[-1]
    if actor_class in ("ProxyActor", "HAProxyManager", "HAProxy"):
        return "proxy"
    if actor_class == "BatchDispatcherActor":
        return "batch dispatcher"
    if actor_class in ROLE_BUDGET or actor_class == "task workers":
        return actor_class
    return "other"


def budget_table(cpu_s_by_role: dict[str, float], links: int, bare_ms_per_link: float | None) -> list[JSON]:
    """CPU ms per link by role beside its budget (``ROLE_BUDGET`` x the bare pipeline's CPU ms per link)."""
    spent: dict[str, float] = {}
    for actor_class, seconds in cpu_s_by_role.items():
        role = role_of(actor_class)
        spent[role] = spent.get(role, 0.0) + seconds
    rows = []
    for role in [*ROLE_BUDGET, *sorted(spent.keys() - ROLE_BUDGET.keys())]:
        ms = 1000 * spent.get(role, 0.0) / links if links else 0.0
        budget = ROLE_BUDGET.get(role, 0.0) * bare_ms_per_link if bare_ms_per_link else None
        rows.append(
            {
                "role": role,
                "cpu_ms_per_link": round(ms, 1),
                "budget_ms_per_link": None if budget is None else round(budget, 1),
                "within": None if budget is None else ms <= budget,
            }
        )
    return rows


@dataclass
class Audit:
    """What one org's log says about its links."""

    duplicates: set[str] = field(default_factory=set)
    lost: set[str] = field(default_factory=set)
    resumed: int = 0
    created: dict[str, JSON] = field(default_factory=dict)
    terminal: dict[str, JSON] = field(default_factory=dict)


def audit_log(events: Iterable[JSON], link_ids: Iterable[str]) -> Audit:
    """Exactly-once per processing request, read from an ordered log.

    A request opens at LinkCreated or LinkReprocessRequested and must hold one
    LinkProcessingStarted (a restart adds Resumed, never a second Started) and
    one terminal event. A link with more of either is a duplicate; a link of
    ``link_ids`` whose latest request has no terminal event is lost.
    """
    audit = Audit()
    started: Counter[str] = Counter()
    ended: Counter[str] = Counter()
    for event in events:
        name, args = event["name"], event["args"]
        if name in ev.POKE_EVENTS:
            link = args["id"] if name == ev.LinkCreated.NAME else args["linkId"]
            if name == ev.LinkCreated.NAME:
                audit.created[link] = event
            started[link] = ended[link] = 0
            audit.terminal.pop(link, None)
        elif name == STARTED:
            started[args["linkId"]] += 1
            if started[args["linkId"]] > 1:
                audit.duplicates.add(args["linkId"])
        elif name == RESUMED:
            audit.resumed += 1
        elif name in TERMINAL:
            ended[args["linkId"]] += 1
            if ended[args["linkId"]] > 1:
                audit.duplicates.add(args["linkId"])
            audit.terminal.setdefault(args["linkId"], event)
    audit.lost = set(link_ids) - audit.terminal.keys()
    return audit


def added(system: dict[str, float | None], bare: dict[str, float | None]) -> dict[str, float | None]:
    """System minus bare, percentile by percentile."""
    result: dict[str, float | None] = {}
    for key, mine in system.items():
        theirs = bare[key]
        result[key] = None if mine is None or theirs is None else round(mine - theirs, 1)
    return result


def iso_seconds(value: str) -> float:
    """Seconds since the epoch of an event's ISO-8601 UTC date."""
    return datetime.fromisoformat(value).timestamp()


def server_latencies_ms(audit: Audit, link_ids: Iterable[str]) -> list[float]:
    """createdAt (the backend's clock) to the terminal event's updatedAt (the processor's clock), per link."""
    return [
        (iso_seconds(audit.terminal[link]["args"]["updatedAt"]) - iso_seconds(audit.created[link]["args"]["createdAt"]))
        * 1000
        for link in link_ids
        if link in audit.terminal and link in audit.created
    ]


def stage_latencies_ms(events: Iterable[JSON]) -> dict[str, list[float]]:
    """Where each link's time went, by the events' own dates: waiting to start, fetch and parse, summarize and commit."""
    marks: dict[str, dict[str, float]] = {}
    for event in events:
        name, args = event["name"], event["args"]
        if name == ev.LinkCreated.NAME:
            marks.setdefault(args["id"], {})["created"] = iso_seconds(args["createdAt"])
        elif name == STARTED:
            marks.setdefault(args["linkId"], {}).setdefault("started", iso_seconds(args["updatedAt"]))
        elif name == ev.LinkMetadataFetched.NAME:
            marks.setdefault(args["linkId"], {}).setdefault("fetched", iso_seconds(args["fetchedAt"]))
        elif name in TERMINAL:
            marks.setdefault(args["linkId"], {}).setdefault("terminal", iso_seconds(args["updatedAt"]))
    stages: dict[str, list[float]] = {"created_to_started": [], "started_to_fetched": [], "fetched_to_terminal": []}
    for mark in marks.values():
        for stage, values in stages.items():
            begin, _, end = stage.partition("_to_")
            if begin in mark and end in mark:
                values.append((mark[end] - mark[begin]) * 1000)
    return stages


def make_plan(
    orgs: Sequence[str], links: int, articles: Sequence[str], synthetic_share: float, seed: int
) -> dict[str, list[str]]:
    """Page paths per org in push order: a seeded sample of articles plus synthetic pages, all distinct within an org."""
    rng = random.Random(seed)
    plan: dict[str, list[str]] = {}
    next_synthetic = 0
    for org in orgs:
        from_articles = min(len(articles), links - round(links * synthetic_share))
        paths = [f"/articles/{page}" for page in rng.sample(list(articles), from_articles)]
        for _ in range(links - from_articles):
            paths.append(f"/synthetic/{next_synthetic}")
            next_synthetic += 1
        rng.shuffle(paths)
        plan[org] = paths
    return plan


def synthetic_count(plan: dict[str, list[str]]) -> int:
    return sum(path.startswith("/synthetic/") for paths in plan.values() for path in paths)


def synthetic_page(number: int, seed: int, sentences: Sequence[str]) -> str:
    """A deterministic article-shaped page made of real sentences, so parsing and summarizing cost what real pages do."""
    rng = random.Random(f"{seed}:{number}")
    title = " ".join(rng.choice(sentences).split()[:7]).rstrip(",.;:")
    paragraphs = [
        "<p>" + html.escape(" ".join(rng.sample(sentences, rng.randint(3, 6)))) + "</p>"
        for _ in range(rng.randint(5, 9))
    ]
    description = html.escape(rng.choice(sentences))
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f'<meta name="description" content="{description}"><meta property="og:site_name" content="Synthetic">'
        f"</head><body><article><h1>{html.escape(title)}</h1>{''.join(paragraphs)}</article></body></html>"
    )


# -- the page server, in its own process so its threads never share a GIL with what is measured --


def serve_pages(host: str, delay: float, synthetic: int, seed: int, conn: Connection) -> None:
    """Serve every article and ``synthetic`` pages, each after ``delay`` seconds; send the port, stop on any message."""
    from tests import pages

    # A burst opens dozens of connections at once; socketserver's backlog of 5 would drop SYNs (1 s retries).
    pages._QuietServer.request_queue_size = 256
    sentences = [
        s
        for page in pages.article_ids()
        for s in re.split(r"(?<=[.!?])\s+", pages.load_article(page)[2])
        if 8 <= len(s.split()) <= 40
    ]

    def delayed(reply: pages.Reply) -> pages.Route:
        def route(_: int) -> pages.Reply:
            time.sleep(delay)
            return reply

        return route

    headers = {"Content-Type": "text/html; charset=utf-8"}
    with pages.PageServer(host) as server:
        for page in pages.article_ids():
            body = pages.load_article(page)[0].encode()
            server.route(f"/articles/{page}", delayed(pages.Reply(body=body, headers=headers)))
        for number in range(synthetic):
            body = synthetic_page(number, seed, sentences).encode()
            server.route(f"/synthetic/{number}", delayed(pages.Reply(body=body, headers=headers)))
        conn.send(server.port)
        conn.recv()


class PageProcess:
    """The page server's process as a context manager; ``base`` is its URL."""

    def __init__(self, host: str, delay: float, synthetic: int, seed: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=serve_pages, args=(host, delay, synthetic, seed, child), daemon=True)
        self.host = host
        self.base = ""

    def __enter__(self) -> Self:
        self._process.start()
        if not self._conn.poll(60):
            raise RuntimeError("page server did not start within 60 s")
        self.base = f"http://{self.host}:{self._conn.recv()}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        self._process.join(5)
        if self._process.is_alive():
            self._process.terminate()


# -- the bare pipeline ------------------------------------------------------------------------


@dataclass
class Run:
    """One side's outcome: per-link latency and completion time (seconds from the run's start)."""

    seconds: float = 0.0
    latency_ms: list[float] = field(default_factory=list)
    done_at: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    cpu_s: float = 0.0

    @property
    def links_per_s(self) -> float:
        return len(self.done_at) / self.seconds if self.seconds else 0.0


async def run_bare(plan: dict[str, list[str]], base: str, host_port: str, fetch: int, summarize: int, bar: Any) -> Run:
    """Every URL handed over at once to per-org lanes (the processors' limits), one fetcher, a warm process pool."""
    import psutil

    from linkproc_ray.errors import LinkprocError
    from linkproc_ray.pipeline.enricher import Enricher, Lanes, call_step
    from linkproc_ray.pipeline.fetch import Fetcher, FetchLimits
    from linkproc_ray.pipeline.parse import parse_page
    from linkproc_ray.pipeline.ssrf import FetchPolicy
    from linkproc_ray.summarize.extractive import ExtractiveSummarizer
    from linkproc_ray.summarize.protocol import SummaryRequest

    loop = asyncio.get_running_loop()
    width = os.cpu_count() or 1
    run = Run()
    me = psutil.Process()
    others = {child.pid for child in me.children()}
    with ProcessPoolExecutor(width, mp_context=multiprocessing.get_context("spawn")) as pool:

        async def in_pool(step: Any, *args: Any, timeout: float | None = None) -> Any:
            # Same steps as the system; a pool process cannot be interrupted, so no timeout here.
            return await loop.run_in_executor(pool, call_step, step, *args)

        fetcher = Fetcher(FetchPolicy.from_allow_list(host_port), FetchLimits())
        # Warm-up outside the clock: every worker started with the parser imported, the connection pool open.
        warm = await fetcher.fetch(base + next(iter(plan.values()))[0])
        await asyncio.gather(*(in_pool(parse_page, warm.html, warm.url) for _ in range(2 * width)))
        summarizer = ExtractiveSummarizer()
        lanes = Lanes(fetch=fetch, summarize=summarize)
        enrichers = {org: Enricher(fetcher, summarizer, run_cpu=in_pool, lanes=lanes) for org in plan}
        cpu = CpuMeter()
        cpu.sample([me, *(child for child in me.children() if child.pid not in others)])
        started = time.perf_counter()

        async def one(org: str, path: str) -> None:
            enricher = enrichers[org]
            try:
                page, parsed = await enricher.fetch(base + path)
                meta = parsed.metadata
                await enricher.summarize(SummaryRequest(page.url, meta.title, meta.description, parsed.text or ""))
            except LinkprocError as exc:
                run.errors[exc.code] += 1
            finished = time.perf_counter() - started
            run.done_at.append(finished)
            run.latency_ms.append(finished * 1000)
            bar.update()

        await asyncio.gather(*(one(org, path) for org, paths in plan.items() for path in paths))
        run.seconds = time.perf_counter() - started
        cpu.sample([me, *(child for child in me.children() if child.pid not in others)])
        run.cpu_s = cpu.seconds
        await fetcher.aclose()
    return run


# -- the system: pushers, followers, memory ---------------------------------------------------


@dataclass
class Posted:
    org: str
    url: str
    status: int
    link_id: str | None
    sent: float
    acked: float
    created: bool
    """Saved as a new link: a 201 to ``POST /links`` (its 200 is a URL already saved), or an accepted push."""


class Follower:
    """Another client of one org: every event it receives, when it arrived, and whether the stream kept order."""

    def __init__(self) -> None:
        self.last_seq = 0
        self.out_of_order = 0
        self.terminal_seen: dict[str, float] = {}
        self.summary_seen: dict[str, float] = {}

    def receive(self, events: list[JSON]) -> None:
        now = time.perf_counter()
        for event in events:
            if event["seq"] != self.last_seq + 1:
                self.out_of_order += 1
            self.last_seq = max(self.last_seq, event["seq"])
            if event["name"] in TERMINAL:
                self.terminal_seen.setdefault(event["args"]["linkId"], now)
            elif event["name"] == SUMMARIZED:
                self.summary_seen.setdefault(event["args"]["linkId"], now)


async def open_socket(base: str, org: str, token: str) -> Any:
    """The org's sync WebSocket, or None where the ingress has no such route yet."""
    import websockets

    url = f"{base.replace('http', 'ws', 1)}/v1/orgs/{org}/sync?after=0&token={token}"
    try:
        return await websockets.connect(url, max_size=None)
    except websockets.exceptions.InvalidHandshake:
        return None


async def follow_socket(ws: Any, follower: Follower) -> None:
    async with ws:
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] == "events":
                follower.receive(message["events"])
            elif message["type"] == "error":
                raise RuntimeError(f"sync socket error: {message}")


async def follow_long_poll(http: httpx.AsyncClient, org: str, follower: Follower) -> None:
    while True:
        response = await http.get(
            f"/v1/orgs/{org}/events", params={"after": follower.last_seq, "limit": 1000, "wait": 10}
        )
        response.raise_for_status()
        follower.receive(response.json()["events"])


async def pull_log(http: httpx.AsyncClient, org: str) -> list[JSON]:
    """The backend's whole log for ``org``, oldest first."""
    events: list[JSON] = []
    while True:
        after = events[-1]["seq"] if events else 0
        response = await http.get(f"/v1/orgs/{org}/events", params={"after": after, "limit": 10_000})
        response.raise_for_status()
        body = response.json()
        events.extend(body["events"])
        if not body["events"] or body["events"][-1]["seq"] >= body["head"]:
            return events


async def push_org(
    http: httpx.AsyncClient,
    org: str,
    urls: list[str],
    burst: int,
    gap_ms: float,
    rng: random.Random,
    posted: list[Posted],
) -> None:
    """One client: a ``POST /links`` per link, ``burst`` of them at once (see :func:`in_bursts`)."""

    async def post(url: str) -> None:
        sent = time.perf_counter()
        response = await http.post(f"/v1/orgs/{org}/links", json={"url": url})
        link_id = response.json().get("id") if response.status_code in (200, 201) else None
        created = response.status_code == 201
        posted.append(Posted(org, url, response.status_code, link_id, sent, time.perf_counter(), created))

    async def post_each(links: list[str]) -> None:
        await asyncio.gather(*(post(url) for url in links))

    await in_bursts(urls, burst, gap_ms, rng, post_each)


async def in_bursts(
    urls: list[str], burst: int, gap_ms: float, rng: random.Random, save: Callable[[list[str]], Awaitable[None]]
) -> None:
    """A client's pace: ``burst`` links saved at once, then a seeded pause of up to ``gap_ms``, until all are saved."""
    for start in range(0, len(urls), burst):
        await save(urls[start : start + burst])
        await asyncio.sleep(rng.uniform(0, gap_ms) / 1000)


async def push_events_org(
    http: httpx.AsyncClient,
    org: str,
    urls: list[str],
    burst: int,
    gap_ms: float,
    rng: random.Random,
    posted: list[Posted],
    *,
    server_ahead: Counter[str],
) -> None:
    """One replica client: each ``burst`` of links is one push of LinkCreated events, as a client of the sync protocol saves.

    A push whose parent is behind the log is answered ``server_ahead`` with the
    head; a link's creation depends on nothing in the log, so the client pushes
    the same events again on that head (a replica that had state to rebase would
    pull first).
    """
    client_id = f"burst-client-{uuid.uuid4().hex[:8]}"
    parent = 0

    async def push(batch: list[str]) -> None:
        nonlocal parent
        links = [(url, ev.new_id()) for url in batch]
        events = [
            ev.NewEvent.of(
                ev.LinkCreated(id=link_id, url=url, domain=httpx.URL(url).netloc.decode(), createdAt=ev.utc_now()),
                client_id=client_id,
                session_id=client_id,
            ).to_json()
            for url, link_id in links
        ]
        sent = time.perf_counter()
        while True:
            response = await http.post(f"/v1/orgs/{org}/events", json={"parent": parent, "events": events})
            if response.status_code != 409:
                break
            server_ahead[org] += 1
            parent = response.json()["head"]
        accepted = response.status_code == 200
        if accepted:
            parent = response.json()["head"]
        acked = time.perf_counter()
        posted.extend(
            Posted(org, url, response.status_code, link_id if accepted else None, sent, acked, accepted)
            for url, link_id in links
        )

    await in_bursts(urls, burst, gap_ms, rng, push)


@dataclass
class Burst:
    posted: list[Posted]
    followers: dict[str, Follower]
    logs: dict[str, list[JSON]]
    started: float
    follower_kind: str
    pushed_at: float = 0.0
    """When the last client's last POST was answered."""
    probe: list[Posted] = field(default_factory=list)
    """The probe org's saves, one every ``--probe-interval`` seconds while the burst ran."""
    server_ahead: int = 0
    """Pushes answered 409 ``server_ahead`` and sent again (``--saves events``)."""


async def probe_saves(http: httpx.AsyncClient, org: str, page_base: str, interval: float, posted: list[Posted]) -> None:
    """One save every ``interval`` seconds until cancelled: the latency of a user's save while others burst."""
    number = 0
    while True:
        url = f"{page_base}/missing/probe-{number}"
        sent = time.perf_counter()
        response = await http.post(f"/v1/orgs/{org}/links", json={"url": url})
        link_id = response.json().get("id")
        posted.append(
            Posted(org, url, response.status_code, link_id, sent, time.perf_counter(), response.status_code == 201)
        )
        number += 1
        await asyncio.sleep(max(0.0, interval - (time.perf_counter() - sent)))


async def run_burst(
    base: str,
    tokens: dict[str, str],
    plan: dict[str, list[str]],
    options: argparse.Namespace,
    bar: Any,
    probe: tuple[str, str] | None = None,
) -> Burst:
    """Followers first, then every org's clients at once; returns when every link is terminal or time is up.

    With ``probe`` (org, page base URL), that org saves one link every
    ``options.probe_interval`` seconds for as long as the burst runs.
    """
    rng = random.Random(options.seed)
    clients = {
        org: httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {tokens[org]}"}, timeout=60)
        for org in plan
    }
    followers = {org: Follower() for org in plan}
    sockets = {org: await open_socket(base, org, tokens[org]) for org in plan}
    kind = "websocket" if all(s is not None for s in sockets.values()) else "long-poll"
    if kind == "long-poll":
        for ws in sockets.values():
            if ws is not None:
                await ws.close()
    tasks = [
        asyncio.create_task(
            follow_socket(sockets[org], followers[org])
            if kind == "websocket"
            else follow_long_poll(clients[org], org, followers[org])
        )
        for org in plan
    ]
    posted: list[Posted] = []
    started = time.perf_counter()
    server_ahead: Counter[str] = Counter()
    pusher = functools.partial(push_events_org, server_ahead=server_ahead) if options.saves == "events" else push_org
    pushers = [
        pusher(
            clients[org],
            org,
            paths[i :: options.clients],
            options.burst,
            options.gap_ms,
            random.Random(rng.random()),
            posted,
        )
        for org, paths in plan.items()
        for i in range(options.clients)
    ]
    pushing = asyncio.gather(*pushers)
    pushed_at = 0.0

    def pushed(_: object) -> None:
        nonlocal pushed_at
        pushed_at = time.perf_counter()

    pushing.add_done_callback(pushed)
    probed: list[Posted] = []
    prober = None
    if probe is not None:
        probe_org, page_base = probe
        probe_http = httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {tokens[probe_org]}"}, timeout=60
        )
        clients[probe_org] = probe_http
        prober = asyncio.create_task(probe_saves(probe_http, probe_org, page_base, options.probe_interval, probed))
    deadline = started + options.timeout
    seen = 0
    while time.perf_counter() < deadline:
        done = sum(p.link_id in followers[p.org].terminal_seen for p in posted if p.link_id is not None)
        bar.update(done - seen)
        seen = done
        if pushing.done() and (pushing.exception() is not None or done == len(posted)):
            break
        for task in tasks:
            if task.done():
                task.result()  # a follower that failed fails the run
        await asyncio.sleep(0.1)
    await pushing
    if prober is not None:
        prober.cancel()
        await asyncio.gather(prober, return_exceptions=True)
    for task in tasks:
        task.cancel()
    logs = {org: await pull_log(clients[org], org) for org in plan}
    for http in clients.values():
        await http.aclose()
    return Burst(posted, followers, logs, started, kind, pushed_at, probed, sum(server_ahead.values()))


RAY_HELPERS = {
    "ray::DashboardAgent": "DashboardAgent",
    "ray::RuntimeEnvAgent": "RuntimeEnvAgent",
    "log_monitor.py": "log monitor",
    "haproxy": "HAProxy",
    "monitor.py": "autoscaler monitor",
    "dashboard.py": "dashboard head",
}
"""Ray's helper processes, by process title or script: they run no task, so they are not task workers."""


def ray_helper_role(cmdline: Sequence[str]) -> str | None:
    """The role of one of Ray's helper processes (see :data:`RAY_HELPERS`), or ``None`` for any other."""
    for word in cmdline[:3]:
        role = RAY_HELPERS.get(word) or RAY_HELPERS.get(Path(word).name)
        if role:
            return role
    return None


UNPROFILED_ROLES = frozenset({"raylet", "gcs_server", "HAProxy", "ServeController"})
"""Processes py-spy cannot read (C++) or that are not on the path of a link."""


class Profiler:
    """py-spy on every Ray process of this node while the burst runs (``--profile``): where each role's CPU goes.

    Each process gets its own ``py-spy record`` from the moment it is seen
    (org actors are created by the run) until :meth:`stop`, which interrupts
    them all; py-spy then writes its raw stacks ("frame;frame;... count").
    """

    def __init__(self, folder: Path, rate: int = 25) -> None:
        self.folder = folder
        self.rate = rate
        self._procs: dict[int, tuple[Any, Path]] = {}
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("raw-*.txt"):
            old.unlink()

    def watch(self, pid: int) -> None:
        import subprocess

        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if pid in self._procs or not Path(spy).exists():
            return
        out = self.folder / f"raw-{pid}.txt"
        command = [spy, "record", "--pid", str(pid), "--rate", str(self.rate), "--format", "raw", "--nonblocking"]
        proc = subprocess.Popen([*command, "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._procs[pid] = (proc, out)

    def stop(self, roles_by_pid: dict[int, str]) -> dict[str, JSON]:
        """Interrupt every recorder; per role, the samples and the top frames (self time and inclusive)."""
        import signal as signals

        for proc, _ in self._procs.values():
            proc.send_signal(signals.SIGINT)
        by_role: dict[str, Counter[str]] = {}
        for pid, (proc, out) in self._procs.items():
            try:
                proc.wait(30)
            except Exception:  # noqa: BLE001 - a recorder that hangs is killed; its samples are lost
                proc.kill()
            stacks = by_role.setdefault(role_of(roles_by_pid.get(pid, "task workers")), Counter())
            if out.exists():
                for line in out.read_text(errors="replace").splitlines():
                    stack, _, count = line.rpartition(" ")
                    if stack and count.isdigit():
                        stacks[stack] += int(count)
        return {role: top_frames(stacks) for role, stacks in by_role.items()}


def top_frames(stacks: Counter[str], limit: int = 15) -> JSON:
    """The functions a role spends its samples in: most self time (leaf frame) and most inclusive time."""
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for stack, count in stacks.items():
        frames = stack.split(";")
        leaf[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    total = sum(stacks.values())

    def share(counter: Counter[str]) -> list[JSON]:
        return [{"frame": f, "share": round(c / total, 3)} for f, c in counter.most_common(limit)]

    return {"samples": total, "self": share(leaf), "inclusive": share(inclusive)}


class MemorySampler(threading.Thread):
    """Peak RSS of each org's actor pair and of this node's Ray processes, and their CPU time, twice a second."""

    def __init__(self, orgs: Sequence[str], profiler: Profiler | None = None) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        from linkproc_ray.adapters.actors import backend_name, processor_name

        self.roles = {backend_name(org): (org, "backend") for org in orgs} | {
            processor_name(org): (org, "processor") for org in orgs
        }
        self.peak: dict[str, int] = {}
        self.peak_total = 0
        self.remote: set[str] = set()
        self.cpu = CpuMeter()
        self.roles_by_pid: dict[int, str] = {}
        self.profiler = profiler
        self.first_pids: set[int] | None = None
        self.seen_pids: set[int] = set()
        self._halt = threading.Event()

    def run(self) -> None:
        while True:
            self.sample()
            if self._halt.wait(0.5):
                return

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.sample()

    def sample(self) -> None:
        import psutil
        import ray

        # The GCS actor table: it carries the PID and needs no dashboard (ray.util.state does).
        node = ray.get_runtime_context().get_node_id()
        for actor in ray._private.state.actors().values():
            if actor["State"] == "ALIVE" and actor["Address"]["NodeID"] == node:
                self.roles_by_pid[actor["Pid"]] = actor["ActorClassName"]
            if actor["State"] != "ALIVE" or actor["Name"] not in self.roles:
                continue
            if actor["Address"]["NodeID"] != node:
                self.remote.add(actor["Name"])
                continue
            try:
                rss = psutil.Process(actor["Pid"]).memory_info().rss
            except psutil.NoSuchProcess:
                continue
            self.peak[actor["Name"]] = max(self.peak.get(actor["Name"], 0), rss)
        procs = ray_processes()
        pids = {proc.pid for proc in procs}
        if self.first_pids is None:
            self.first_pids = pids
        self.seen_pids |= pids
        for proc in procs:
            if proc.pid not in self.roles_by_pid:
                with contextlib.suppress(psutil.NoSuchProcess):
                    if proc.name() in ("raylet", "gcs_server"):
                        self.roles_by_pid[proc.pid] = proc.name()
                    elif role := ray_helper_role(proc.cmdline()):
                        self.roles_by_pid[proc.pid] = role
        before = dict(self.cpu.last)
        self.peak_total = max(self.peak_total, self.cpu.sample(procs))
        if self.profiler is not None:
            # Only processes that work: a recorder on each of dozens of idle workers costs more than they do.
            for pid, seconds in self.cpu.last.items():
                role = self.roles_by_pid.get(pid, "task workers")
                if role not in UNPROFILED_ROLES and seconds - before.get(pid, seconds) > 0.02:
                    self.profiler.watch(pid)

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds per actor class (or raylet, GCS, task workers), most first: where the system's CPU went."""
        roles: dict[str, float] = {}
        for pid, seconds in self.cpu.by_pid().items():
            role = self.roles_by_pid.get(pid, "task workers")
            roles[role] = roles.get(role, 0.0) + seconds
        return {role: round(seconds, 1) for role, seconds in sorted(roles.items(), key=lambda item: -item[1])}

    def processes_by_role(self) -> dict[str, int]:
        """How many processes each role ran on: more task workers than parse slots means Ray started spares."""
        counts: dict[str, int] = {}
        for pid in self.cpu.by_pid():
            role = self.roles_by_pid.get(pid, "task workers")
            counts[role] = counts.get(role, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: -item[1]))

    def per_org_mb(self) -> dict[str, JSON]:
        orgs: dict[str, JSON] = {}
        for name, rss in self.peak.items():
            org, role = self.roles[name]
            orgs.setdefault(org, {})[role] = round(rss / 2**20, 1)
        return orgs


class CpuMeter:
    """CPU seconds a changing set of processes used since the first sample (new processes count whole)."""

    def __init__(self) -> None:
        self._first: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def sample(self, procs: Iterable[Any]) -> int:
        """Record the processes' CPU time; returns their total RSS."""
        import psutil

        first_sample = not self.last
        total_rss = 0
        for proc in procs:
            try:
                with proc.oneshot():
                    times, rss = proc.cpu_times(), proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
            self.last[proc.pid] = times.user + times.system
            if first_sample:
                self._first[proc.pid] = self.last[proc.pid]
            total_rss += rss
        return total_rss

    def by_pid(self) -> dict[int, float]:
        return {pid: cpu - self._first.get(pid, 0.0) for pid, cpu in self.last.items()}

    @property
    def seconds(self) -> float:
        return sum(self.by_pid().values())


def ray_processes() -> list[Any]:
    """This node's Ray processes of this session: its GCS, raylet and everything the raylet started,
    and the head's helpers a driver's ``ray.init`` starts beside them (log monitor, autoscaler monitor,
    dashboard head), which name the session on their command line.

    Only this driver's session: other Ray clusters on the same machine (other
    benchmarks, test suites) are not counted.
    """
    import psutil
    import ray

    session = ray._private.worker._global_node.session_name
    procs: dict[int, Any] = {}
    for proc in psutil.process_iter(["name", "cmdline"]):
        if session not in " ".join(proc.info["cmdline"] or ()):
            continue
        procs.setdefault(proc.pid, proc)
        if proc.info["name"] in ("raylet", "gcs_server"):
            try:
                procs.update({p.pid: p for p in proc.children(recursive=True) if p.pid not in procs})
            except psutil.NoSuchProcess:
                continue
    return list(procs.values())


@dataclass
class System:
    run: Run
    burst: Burst
    audits: dict[str, Audit]
    memory: MemorySampler
    cluster_cpus: float
    by_org: dict[str, JSON]
    parse_priority: str
    front_door: str | None
    profile: dict[str, JSON] | None = None


def run_system(plan: dict[str, list[str]], pages: PageProcess, host_port: str, options: argparse.Namespace) -> System:
    """Start (or attach to) Ray, deploy the app, warm it up, run the burst, read back every log."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray import serve
    from tqdm import tqdm

    from linkproc_ray.adapters.actors import backend_name, processor_name
    from linkproc_ray.adapters.serve import build_app
    from linkproc_ray.api.auth import issue_token
    from linkproc_ray.config import NAMESPACE, load_settings

    data_dir = Path(options.data_dir or tempfile.mkdtemp(prefix="linkproc-burst-"))
    overrides = {
        "data_dir": str(data_dir),
        "jwt_secret": SECRET,
        "fetch_allow_hosts": host_port,
        "fetch_concurrency": options.fetch_concurrency,
        "summarize_concurrency": options.summarize_concurrency,
        "serve_app_name": APP_NAME,
        **({"parse_priority": options.parse_priority} if options.parse_priority else {}),
        # The machinery's pages are all on one loopback host: the politeness
        # limit (2 fetches at once per host) would measure the gate, not the events.
        **({"fetch_per_host": options.fetch_concurrency} if options.machinery else {}),
    }
    settings = load_settings(**overrides)
    warmup = f"{next(iter(plan))}-warmup"
    probe_org = f"{next(iter(plan))}-probe"
    tokens = {org: issue_token(settings, org, ttl=3 * 3600) for org in [*plan, warmup, probe_org]}
    from linkproc_ray.adapters.front_door import (
        HAPROXY_SWITCH,
        local_front_door,
        local_front_door_kind,
        ray_environment,
    )
    from linkproc_ray.adapters.local import RAY_SYSTEM_CONFIG

    if options.front_door:
        os.environ[HAPROXY_SWITCH] = "1" if options.front_door == "haproxy" else "0"
    front_door = None if options.address else local_front_door_kind()
    with ray_environment({} if options.address else local_front_door()):
        ray.init(
            address=options.address or "local",
            namespace=NAMESPACE,
            include_dashboard=False,
            logging_level=logging.WARNING,
            **({} if options.address else {"_system_config": RAY_SYSTEM_CONFIG}),
        )
    try:
        quiet = {"enable_access_log": False, "log_level": "WARNING"}
        serve.start(http_options={"host": "127.0.0.1", "port": options.port}, logging_config=quiet)
        serve.run(build_app(overrides), name=APP_NAME, route_prefix=ROUTE_PREFIX, logging_config=quiet)
        base = f"http://127.0.0.1:{options.port}{ROUTE_PREFIX}"
        # Warm Ray's parse workers and the summarizer, as the bare pool is warmed; the measured orgs start cold.
        width = 2 * (os.cpu_count() or 1)
        # The probe org saves one link here, so that its saves under load are a live org's, not a cold start's.
        warm_plan = {
            warmup: [pages.base + path for path in next(iter(plan.values()))[:width]],
            probe_org: [f"{pages.base}/missing/probe-warm-up"],
        }
        with tqdm(total=width, desc="system warm-up", unit="link") as bar:
            asyncio.run(run_burst(base, tokens, warm_plan, options, bar))
        profiler = Profiler(options.out / "profile") if options.profile else None
        memory = MemorySampler(list(plan), profiler)
        memory.start()
        urls = {org: [pages.base + path for path in paths] for org, paths in plan.items()}
        with tqdm(total=sum(map(len, plan.values())), desc="system", unit="link") as bar:
            burst = asyncio.run(run_burst(base, tokens, urls, options, bar, probe=(probe_org, pages.base)))
        memory.stop()
        profile = profiler.stop(memory.roles_by_pid) if profiler is not None else None
        cluster_cpus = ray.cluster_resources().get("CPU", 0.0)
    finally:
        if options.address:
            serve.delete(APP_NAME)
            for org in [*plan, warmup, probe_org]:
                for name in (backend_name(org), processor_name(org)):
                    try:
                        ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
                    except ValueError:
                        continue
        else:
            serve.shutdown()
        ray.shutdown()
        if not options.data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)

    ids = {org: [p.link_id for p in burst.posted if p.org == org and p.link_id] for org in plan}
    audits = {org: audit_log(burst.logs[org], ids[org]) for org in plan}
    run = Run()
    by_org: dict[str, JSON] = {}
    for org, audit in audits.items():
        run.latency_ms.extend(server_latencies_ms(audit, ids[org]))
        failed: Counter[str] = Counter()
        for link in ids[org]:
            if link in audit.terminal and audit.terminal[link]["name"] != ev.LinkProcessingCompleted.NAME:
                failed[audit.terminal[link]["args"].get("error") or "cancelled"] += 1
        run.errors.update(failed)
        follower = burst.followers[org]
        done = [follower.terminal_seen[link] - burst.started for link in ids[org] if link in follower.terminal_seen]
        run.done_at.extend(done)
        # Per org, so an org starved by the others shows.
        by_org[org] = {
            "failed": dict(failed),
            "first_terminal_s": round(min(done, default=0), 1),
            "last_terminal_s": round(max(done, default=0), 1),
        }
        first_post = min((p.sent for p in burst.posted if p.org == org), default=burst.started)
        first_acked = min((p.acked for p in burst.posted if p.org == org), default=burst.started)
        by_org[org]["first_save_acked_s"] = round(first_acked - burst.started, 2)
        first_terminal = min(
            (follower.terminal_seen[link] for link in ids[org] if link in follower.terminal_seen), default=None
        )
        by_org[org]["cold_first_terminal_s"] = None if first_terminal is None else round(first_terminal - first_post, 2)
    run.seconds = max(run.done_at, default=0.0)
    run.cpu_s = memory.cpu.seconds
    return System(run, burst, audits, memory, cluster_cpus, by_org, settings.parse_priority, front_door, profile)


# -- report -----------------------------------------------------------------------------------


def summary_seen_ms(burst: Burst) -> list[float]:
    """Client-observed: the POST answered (the link exists) to its LinkSummarized reaching the org's other client."""
    return [
        (burst.followers[p.org].summary_seen[p.link_id] - p.acked) * 1000
        for p in burst.posted
        if p.link_id in burst.followers[p.org].summary_seen
    ]


def build_result(plan: dict[str, list[str]], system: System, bare: Run, options: argparse.Namespace) -> JSON:
    burst, audits = system.burst, system.audits
    links = sum(map(len, plan.values()))
    latency, bare_latency = percentiles(system.run.latency_ms), percentiles(bare.latency_ms)
    per_org = system.memory.per_org_mb()
    pairs = [org["backend"] + org["processor"] for org in per_org.values() if len(org) == 2]
    stages: dict[str, list[float]] = {}
    for log in burst.logs.values():
        for stage, values in stage_latencies_ms(log).items():
            stages.setdefault(stage, []).extend(values)
    post_seconds = max(p.acked for p in burst.posted) - burst.started
    last_terminal = burst.started + system.run.seconds
    under_load = [p for p in burst.probe if p.sent < last_terminal]
    pushing = [p for p in under_load if p.sent < burst.pushed_at]
    draining = [p for p in under_load if p.sent >= burst.pushed_at]
    bare_ms_per_link = 1000 * bare.cpu_s / links if bare.cpu_s else None
    system_ms_per_link = 1000 * system.run.cpu_s / links
    cold_first = [o["cold_first_terminal_s"] for o in system.by_org.values() if o["cold_first_terminal_s"] is not None]
    return {
        "mode": "quick" if options.quick else "full",
        "saves": options.saves,
        "seed": options.seed,
        "orgs": len(plan),
        "links": links,
        "page_delay_ms": options.page_delay_ms,
        "lanes": {"fetch": options.fetch_concurrency, "summarize": options.summarize_concurrency},
        "parse_priority": system.parse_priority,
        "front_door": system.front_door,
        "cpus": os.cpu_count(),
        "cluster_cpus": system.cluster_cpus,
        "duplicates": sum(len(a.duplicates) for a in audits.values()),
        "lost": sum(len(a.lost) for a in audits.values()),
        "not_created": sum(not p.created for p in burst.posted) + links - len(burst.posted),
        "follower": burst.follower_kind,
        "follower_out_of_order": sum(f.out_of_order for f in burst.followers.values()),
        "resumed": sum(a.resumed for a in audits.values()),
        "failed": dict(system.run.errors),
        "by_org": system.by_org,
        "bare_failed": dict(bare.errors),
        "seconds": round(system.run.seconds, 2),
        "bare_seconds": round(bare.seconds, 2),
        "posts_per_s": round(len(burst.posted) / post_seconds, 1),
        "server_ahead": burst.server_ahead,
        "links_per_s": round(system.run.links_per_s, 2),
        "bare_links_per_s": round(bare.links_per_s, 2),
        "throughput_ratio": round(system.run.links_per_s / bare.links_per_s, 3) if bare.links_per_s else None,
        "create_ms": percentiles([(p.acked - p.sent) * 1000 for p in burst.posted]),
        "create_ms_under_load": percentiles([(p.acked - p.sent) * 1000 for p in under_load]),
        "create_ms_while_pushing": percentiles([(p.acked - p.sent) * 1000 for p in pushing]),
        "create_ms_while_draining": percentiles([(p.acked - p.sent) * 1000 for p in draining]),
        "probe_saves": {
            "pushing": len(pushing),
            "draining": len(draining),
            "failed": sum(p.status >= 300 for p in burst.probe),
            "pushed_s": round(burst.pushed_at - burst.started, 2),
            "backends_up_s": max((o["first_save_acked_s"] for o in system.by_org.values()), default=None),
            "timeline": [[round(p.sent - burst.started, 2), round((p.acked - p.sent) * 1000, 1)] for p in under_load],
        },
        "first_terminal_s": percentiles(cold_first),
        "latency_ms": latency,
        "summary_seen_ms": percentiles(summary_seen_ms(burst)),
        "bare_latency_ms": bare_latency,
        "added_latency_ms": added(latency, bare_latency),
        "rss_mb_per_org": round(sum(pairs) / len(pairs), 1) if pairs else None,
        "rss_mb_per_org_max": max(pairs, default=None),
        "rss_mb_by_org": per_org,
        "rss_mb_not_measured": sorted(system.memory.remote),
        "cluster_rss_mb": round(system.memory.peak_total / 2**20, 1),
        "cpu_s": round(system.run.cpu_s, 1),
        "bare_cpu_s": round(bare.cpu_s, 1),
        "cpu_s_by_role": system.memory.cpu_by_role(),
        "cpu_ms_per_link": round(system_ms_per_link, 1),
        "processes_started": len(system.memory.seen_pids - (system.memory.first_pids or set())),
        "processes_by_role": system.memory.processes_by_role(),
        "bare_cpu_ms_per_link": None if bare_ms_per_link is None else round(bare_ms_per_link, 1),
        "cpu_per_link_ratio": round(system_ms_per_link / bare_ms_per_link, 2) if bare_ms_per_link else None,
        "cpu_ms_per_link_by_role": budget_table(system.memory.cpu_by_role(), links, bare_ms_per_link),
        "profile": system.profile,
        "stages_ms": {stage: percentiles(values) for stage, values in stages.items()},
    }


def markdown(result: JSON) -> str:
    def trio(p: JSON) -> str:
        return " / ".join("–" if p[k] is None else f"{p[k]:,.0f}" for k in ("p50", "p95", "p99"))

    rows = [
        (
            "links (orgs × links)",
            f"{result['links']} ({result['orgs']} × {result['links'] // result['orgs']})",
            str(result["links"]),
        ),
        ("links/s", f"{result['links_per_s']:.2f}", f"{result['bare_links_per_s']:.2f}"),
        ("wall s (first push → last terminal)", f"{result['seconds']:.1f}", f"{result['bare_seconds']:.1f}"),
        ("save a link (POST) p50 / p95 / p99 ms", trio(result["create_ms"]), "–"),
        ("probe org's save while others burst p50 / p95 / p99 ms", trio(result["create_ms_under_load"]), "–"),
        ("… while the burst is pushing", trio(result["create_ms_while_pushing"]), "–"),
        ("… while it drains", trio(result["create_ms_while_draining"]), "–"),
        ("cold org: first POST → its first terminal s p50 / p95 / p99", trio(result["first_terminal_s"]), "–"),
        ("latency p50 / p95 / p99 ms", trio(result["latency_ms"]), trio(result["bare_latency_ms"])),
        (f"summary seen by another client ({result['follower']}) ms", trio(result["summary_seen_ms"]), "–"),
        (
            "CPU seconds (cluster processes / bare process and pool)",
            f"{result['cpu_s']:.1f}",
            f"{result['bare_cpu_s']:.1f}",
        ),
        ("CPU ms per link", f"{result['cpu_ms_per_link']:.1f}", f"{result['bare_cpu_ms_per_link'] or 0:.1f}"),
        *((f"system stage {stage.replace('_', ' ')} ms", trio(p), "–") for stage, p in result["stages_ms"].items()),
        ("failed links", str(sum(result["failed"].values())), str(sum(result["bare_failed"].values()))),
        ("duplicates / lost", f"{result['duplicates']} / {result['lost']}", "–"),
        ("RSS per org actor pair MB (mean / max)", f"{result['rss_mb_per_org']} / {result['rss_mb_per_org_max']}", "–"),
        ("RSS of the cluster's processes MB", f"{result['cluster_rss_mb']:,.0f}", "–"),
    ]
    lines = ["| | system | bare pipeline |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {system} | {bare} |" for name, system, bare in rows]
    lines.append(
        f"\nthroughput_ratio = {result['throughput_ratio']}; cpu_per_link_ratio = {result['cpu_per_link_ratio']}; "
        f"added latency p50/p95/p99 = {trio(result['added_latency_ms'])} ms"
    )
    lines += ["", budget_markdown(result["cpu_ms_per_link_by_role"])]
    return "\n".join(lines)


MACHINERY_KEYS = (
    "mode",
    "saves",
    "front_door",
    "server_ahead",
    "orgs",
    "links",
    "duplicates",
    "lost",
    "not_created",
    "follower_out_of_order",
    "failed",
    "seconds",
    "posts_per_s",
    "links_per_s",
    "create_ms",
    "create_ms_under_load",
    "latency_ms",
    "stages_ms",
    "cpu_s",
    "cpu_ms_per_link",
    "cpu_s_by_role",
    "processes_started",
    "rss_mb_per_org",
    "cluster_rss_mb",
    "profile",
)


def machinery_result(result: JSON) -> JSON:
    """What ``--machinery`` reports: the event machinery's rate and CPU per link by role (no bare run to compare)."""
    out = {key: result[key] for key in MACHINERY_KEYS}
    out["mode"] = f"machinery-{result['mode']}"
    out["cpu_ms_per_link_by_role"] = {row["role"]: row["cpu_ms_per_link"] for row in result["cpu_ms_per_link_by_role"]}
    return out


def machinery_markdown(result: JSON) -> str:
    lines = [
        "| | machinery |",
        "| --- | ---: |",
        f"| links (pages answer 404 at once) | {result['links']} |",
        f"| saved as | {'a push of LinkCreated events per burst' if result['saves'] == 'events' else 'a POST per link'} |",
        f"| links/s (first save → last terminal) | {result['links_per_s']:.1f} |",
        f"| links saved/s | {result['posts_per_s']:.1f} |",
        f"| pushes answered server_ahead (sent again) | {result['server_ahead']} |",
        f"| CPU ms per link | {result['cpu_ms_per_link']:.1f} |",
        f"| duplicates / lost | {result['duplicates']} / {result['lost']} |",
        "",
        "| role | CPU ms per link |",
        "| --- | ---: |",
    ]
    lines += [f"| {role} | {ms:.1f} |" for role, ms in result["cpu_ms_per_link_by_role"].items()]
    return "\n".join(lines)


def budget_markdown(rows: list[JSON]) -> str:
    """The per-role CPU budget as a table: spent, budget, within."""
    lines = ["| role | CPU ms per link | budget ms per link | within |", "| --- | ---: | ---: | --- |"]
    for row in rows:
        budget = "–" if row["budget_ms_per_link"] is None else f"{row['budget_ms_per_link']:.1f}"
        within = "–" if row["within"] is None else ("yes" if row["within"] else "**no**")
        lines.append(f"| {row['role']} | {row['cpu_ms_per_link']:.1f} | {budget} | {within} |")
    return "\n".join(lines)


def plot(path: Path, system: System, bare: Run) -> None:
    """Latency CDFs (system, summary seen, bare) and links completed over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (cdf, timeline) = plt.subplots(1, 2, figsize=(12, 4.5))
    curves = (
        ("system: created → terminal", system.run.latency_ms),
        ("system: created → summary seen by another client", summary_seen_ms(system.burst)),
        ("bare pipeline: start → done", bare.latency_ms),
    )
    for label, values in curves:
        ordered = sorted(values)
        cdf.step(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], where="post", label=label)
    cdf.set(xlabel="latency (ms)", ylabel="fraction of links", title="Latency CDF")
    cdf.legend(fontsize="small")
    cdf.grid(alpha=0.3)
    for label, done in (("system", system.run.done_at), ("bare pipeline", bare.done_at)):
        ordered = sorted(done)
        timeline.step(ordered, range(1, len(ordered) + 1), where="post", label=label)
    timeline.set(xlabel="seconds since the first link", ylabel="links terminal", title="Links completed over time")
    timeline.legend(fontsize="small")
    timeline.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 orgs x 40 links (default: 10 x 100)")
    parser.add_argument(
        "--machinery",
        action="store_true",
        help="one org, 3,000 links (600 with --quick) whose pages answer 404 at once, pushed as LinkCreated events"
        " by two replica clients in bursts of 50: the event machinery alone",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy every Ray process: benchmarks/results/profile/")
    parser.add_argument("--probe-interval", type=float, default=0.5, help="seconds between the probe org's saves")
    parser.add_argument("--orgs", type=int, help="orgs (overrides the mode)")
    parser.add_argument("--links", type=int, help="links per org (overrides the mode)")
    parser.add_argument("--clients", type=int, help="concurrent clients pushing per org (4; 2 with --machinery)")
    parser.add_argument("--burst", type=int, help="links a client saves at once (5; 50 with --machinery)")
    parser.add_argument(
        "--saves",
        choices=("posts", "events"),
        help="how clients save: a POST /links per link, or a push of LinkCreated events per burst"
        " (posts; events with --machinery)",
    )
    parser.add_argument(
        "--gap-ms", type=float, help="most a client pauses between its bursts, seeded (100; 10 with --machinery)"
    )
    parser.add_argument("--page-delay-ms", type=float, default=100.0, help="the page server's delay per request")
    parser.add_argument(
        "--synthetic-share", type=float, default=0.25, help="share of synthetic pages among each org's links"
    )
    parser.add_argument(
        "--parse-priority",
        choices=("idle", "nice", "normal"),
        help="how batch work yields to saves and sync: SCHED_IDLE, nice 19, or as is (LINKPROC_PARSE_PRIORITY's default)",
    )
    parser.add_argument(
        "--front-door",
        choices=("haproxy", "proxy"),
        help="what serves the local cluster's HTTP port: HAProxy or Serve's Python proxy (default: HAProxy where Ray "
        "ships it, as `linkproc up`; RAY_SERVE_ENABLE_HA_PROXY=0 also keeps the proxy)",
    )
    parser.add_argument("--fetch-concurrency", type=int, default=8, help="fetch lane per org (system and bare)")
    parser.add_argument("--summarize-concurrency", type=int, default=3, help="summarize lane per org (system and bare)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds until unfinished links count as lost")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--address", help="attach to this Ray cluster (e.g. auto) instead of starting a local one")
    parser.add_argument(
        "--port", type=int, help="HTTP port of Serve's proxy on this node (default: a free one, 8000 with --address)"
    )
    parser.add_argument("--page-host", default="127.0.0.1", help="address the page server binds and the links name")
    parser.add_argument("--data-dir", help="the orgs' SQLite files (default: a temporary dir, removed after)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for burst.json and burst.png")
    options = parser.parse_args(argv)
    if options.machinery:
        options.orgs = options.orgs or 1
        options.links = options.links or (600 if options.quick else 3000)
    options.clients = options.clients or (2 if options.machinery else 4)
    options.burst = options.burst or (50 if options.machinery else 5)
    options.saves = options.saves or ("events" if options.machinery else "posts")
    options.gap_ms = options.gap_ms if options.gap_ms is not None else (10.0 if options.machinery else 100.0)
    options.orgs = options.orgs or (3 if options.quick else 10)
    options.links = options.links or (40 if options.quick else 100)
    options.port = options.port or (8000 if options.address else free_port())
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    from tests.pages import article_ids
    from tqdm import tqdm

    run_id = uuid.uuid4().hex[:6]
    orgs = [f"burst-{run_id}-{i}" for i in range(options.orgs)]
    if options.machinery:
        plan = {org: [f"/missing/{org}-{n}" for n in range(options.links)] for org in orgs}
    else:
        plan = make_plan(orgs, options.links, article_ids(), options.synthetic_share, options.seed)
    options.out.mkdir(parents=True, exist_ok=True)
    with PageProcess(options.page_host, options.page_delay_ms / 1000, synthetic_count(plan), options.seed) as pages:
        host_port = pages.base.removeprefix("http://")
        bare = Run()
        if not options.machinery:
            with tqdm(total=sum(map(len, plan.values())), desc="bare pipeline", unit="link") as bar:
                bare = asyncio.run(
                    run_bare(plan, pages.base, host_port, options.fetch_concurrency, options.summarize_concurrency, bar)
                )
        system = run_system(plan, pages, host_port, options)

    result = build_result(plan, system, bare, options)
    if options.machinery:
        result = machinery_result(result)
        (options.out / "machinery.json").write_text(json.dumps(result, indent=2) + "\n")
        print()
        print(machinery_markdown(result))
        print(f"\nwritten to {options.out / 'machinery.json'}")
    else:
        (options.out / "burst.json").write_text(json.dumps(result, indent=2) + "\n")
        plot(options.out / "burst.png", system, bare)
        print()
        print(markdown(result))
        print(f"\nwritten to {options.out / 'burst.json'} and {options.out / 'burst.png'}")
    failed = result["duplicates"] or result["lost"] or result["not_created"] or result["follower_out_of_order"]
    if failed:
        print(
            f"FAILED: duplicates={result['duplicates']} lost={result['lost']} "
            f"not_created={result['not_created']} follower_out_of_order={result['follower_out_of_order']}",
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
