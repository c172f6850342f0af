"""Does a big import hold other orgs back? A 5,000-link import into org A while org B saves one link every 0.5 s.

B's saves are measured twice, with the same tooling as burst.py's probe
(after a first save that starts B's actors):
alone (nothing else running), then during A's import until every one of A's
links is terminal. For each phase: B's POST latency (p50/p95/p99) and its
time to summary (the POST answered to its LinkSummarized reaching B's other
client over the sync socket). Also A's throughput and the peak number of
requests each page host served at once (LINKPROC_FETCH_PER_HOST bounds it).

    python benchmarks/import_fairness.py                  # 5,000 links
    python benchmarks/import_fairness.py --links 1000     # quicker

Writes benchmarks/results/import_fairness.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.burst import Follower, Posted, follow_socket, open_socket, percentiles  # noqa: E402
from benchmarks.import_acceptance import (  # noqa: E402
    HOSTS,
    RESULTS,
    host_servers,
    local_cluster,
    wait_terminal,
)

JSON = dict[str, Any]


def phase(posted: list[Posted], follower: Follower) -> JSON:
    """B's saves in one phase: POST latency and time to summary, in ms."""
    answered = [p for p in posted if p.link_id is not None]
    return {
        "saves": len(posted),
        "errors": sum(p.status >= 400 for p in posted),
        "post_ms": percentiles([(p.acked - p.sent) * 1000 for p in answered]),
        "summary_ms": percentiles(
            [
                (follower.summary_seen[p.link_id] - p.acked) * 1000
                for p in answered
                if p.link_id in follower.summary_seen
            ]
        ),
        "without_summary": sum(p.link_id not in follower.summary_seen for p in answered),
    }


async def probe_saves(http: httpx.AsyncClient, pages: list[str], interval: float, posted: list[Posted]) -> None:
    """B saves the next of ``pages`` every ``interval`` seconds until cancelled (burst.py's probe, with real pages)."""
    while pages:
        url = pages.pop(0)
        sent = time.perf_counter()
        response = await http.post("/v1/orgs/orgb/links", json={"url": url})
        posted.append(Posted("orgb", url, response.status_code, response.json().get("id"), sent, time.perf_counter()))
        await asyncio.sleep(max(0.0, interval - (time.perf_counter() - sent)))


async def probe_phase(base: str, token: str, pages: list[str], interval: float, run_for: Any, settle: float) -> JSON:
    """B saves every ``interval`` s while ``run_for`` runs, then waits up to ``settle`` s for the last summaries."""
    follower = Follower()
    socket = await open_socket(base, "orgb", token)
    following = asyncio.create_task(follow_socket(socket, follower))
    posted: list[Posted] = []
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        prober = asyncio.create_task(probe_saves(http, pages, interval, posted))
        extra = await run_for
        prober.cancel()
        await asyncio.gather(prober, return_exceptions=True)
    deadline = time.perf_counter() + settle
    while time.perf_counter() < deadline and any(p.link_id not in follower.summary_seen for p in posted if p.link_id):
        await asyncio.sleep(0.2)
    following.cancel()
    await asyncio.gather(following, return_exceptions=True)
    return {**phase(posted, follower), **(extra or {})}


async def import_a(base: str, token: str, urls: list[str], timeout: float) -> JSON:
    """A's import through the SDK (what ``linkproc import`` does), then until all of A's links are terminal."""
    from linkproc_ray.client import LinkprocClient
    from linkproc_ray.core.bookmarks import Entry

    started = time.perf_counter()
    async with LinkprocClient(base, token) as client:
        outcomes = await client.import_links([Entry(i + 1, url) for i, url in enumerate(urls)])
    imported_s = time.perf_counter() - started
    ids = {o.id for o in outcomes if o.outcome == "created" and o.id}
    log, _ = await wait_terminal(base, "orga", token, ids, timeout)
    total_s = time.perf_counter() - started
    ended = {e["args"]["linkId"] for e in log if e["name"].endswith(("Completed", "Failed", "Cancelled"))} & ids
    return {
        "a_links": len(ids),
        "a_import_seconds": round(imported_s, 1),
        "a_all_terminal_seconds": round(total_s, 1),
        "a_terminal": len(ended),
        "a_links_per_second": round(len(ended) / total_s, 1),
    }


async def sleep_for(seconds: float) -> None:
    await asyncio.sleep(seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--links", type=int, default=5000)
    parser.add_argument("--per-host", type=int, default=2)
    parser.add_argument("--delay", type=float, default=0.05, help="Seconds each page takes to answer.")
    parser.add_argument("--alone", type=float, default=20.0, help="Seconds B saves with nothing else running.")
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--port", type=int, default=8012)
    parser.add_argument("--timeout", type=float, default=1500)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS / "import_fairness.json")
    options = parser.parse_args(argv)

    from linkproc_ray.api.auth import issue_token

    a_hosts, b_host = HOSTS[:-1], HOSTS[-1:]
    per_server = options.links // len(a_hosts) + 1
    probes = int((options.alone + options.timeout) / options.interval) + 10
    with host_servers(per_server, options.delay, options.seed, a_hosts) as a_servers:
        with host_servers(probes, options.delay, options.seed + 100, b_host) as (b_server,):
            with local_cluster(options.port, ",".join(HOSTS), options.per_host) as (base, settings):
                token_a = issue_token(settings, "orga", ttl=4 * 3600)
                token_b = issue_token(settings, "orgb", ttl=4 * 3600)
                urls = [
                    f"{a_servers[i % len(a_servers)].base}/synthetic/{i // len(a_servers)}"
                    for i in range(options.links)
                ]
                b_pages = [f"{b_server.base}/synthetic/{n}" for n in range(probes)]  # one list: no page saved twice

                async def run() -> tuple[JSON, JSON]:
                    # B's first save starts its actors (a cold org): not part of either measured phase.
                    await probe_phase(base, token_b, b_pages, options.interval, sleep_for(1.0), 30)
                    alone = await probe_phase(base, token_b, b_pages, options.interval, sleep_for(options.alone), 30)
                    during = await probe_phase(
                        base,
                        token_b,
                        b_pages,
                        options.interval,
                        import_a(base, token_a, urls, options.timeout),
                        30,
                    )
                    return alone, during

                alone, during = asyncio.run(run())
                peaks = {server.host: server.peak() for server in [*a_servers, b_server]}

    result = {
        "links": options.links,
        "fetch_per_host": options.per_host,
        "page_delay_s": options.delay,
        "probe_interval_s": options.interval,
        "b_alone": alone,
        "b_during_import": during,
        "peak_concurrent_per_host": peaks,
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if during.get("a_terminal") == during.get("a_links") else 1


if __name__ == "__main__":
    raise SystemExit(main())
