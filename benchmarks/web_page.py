"""How fast the web page opens an org with thousands of links, in Debian's Chromium, against the real Serve app on Ray.

The org is seeded with finished links through the REST push (each link's
Created, Started, MetadataFetched, Summarized and Completed or Failed in one
batch, so the processor has nothing to do), then the benchmark times the list
route the page calls and the page itself: opening it until its first page of
rows shows, and loading every link (what a text filter does).

    python benchmarks/web_page.py --quick     # 1,000 links
    python benchmarks/web_page.py             # 5,000 links
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from linkproc_ray.core import events as ev
from linkproc_ray.core.events import new_id

RESULTS = Path(__file__).parent / "results" / "web_page.json"
SECRET = "benchmark-secret-that-is-long-enough-for-hs256"
CHROMIUM = os.environ.get("LINKPROC_CHROMIUM", "/usr/bin/chromium")
WHEN = "2026-01-01T00:00:00.000Z"
LINKS_PER_PUSH = 200
SUMMARY = (
    "A long read about how a small team keeps a self-hosted service running for years. "
    "It covers backups, upgrades and the habits that make an outage short. "
    "The author ends with a checklist."
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def link_events(n: int) -> list[ev.EventArgs]:
    """One finished link: every hundredth failed (fetch:404), the rest completed with metadata and a summary."""
    link_id = f"bench-{n:06d}"
    created = ev.LinkCreated(
        id=link_id, url=f"https://site{n % 50}.example/articles/{n}", domain=f"site{n % 50}.example", createdAt=WHEN
    )
    started = ev.LinkProcessingStarted(linkId=link_id, updatedAt=WHEN)
    if n % 100 == 0:
        return [created, started, ev.LinkProcessingFailed(linkId=link_id, error="fetch:404", updatedAt=WHEN)]
    return [
        created,
        started,
        ev.LinkMetadataFetched(
            id=new_id(),
            linkId=link_id,
            title=f"Article number {n}: keeping a service alive",
            siteName=f"Site {n % 50}",
            description="How a small team runs a service.",
            fetchedAt=WHEN,
        ),
        ev.LinkSummarized(id=new_id(), linkId=link_id, summary=SUMMARY, model="bench", summarizedAt=WHEN),
        ev.LinkProcessingCompleted(linkId=link_id, updatedAt=WHEN),
    ]


def seed(api: httpx.Client, links: int) -> float:
    """Push ``links`` finished links; returns the seconds it took."""
    started = time.perf_counter()
    head = 0
    for first in range(0, links, LINKS_PER_PUSH):
        args = [a for n in range(first, min(links, first + LINKS_PER_PUSH)) for a in link_events(n)]
        events = [
            {"id": new_id(), "name": a.NAME, "args": a.to_json(), "clientId": "b", "sessionId": "b"} for a in args
        ]
        response = api.post("/events", json={"parent": head, "events": events})
        response.raise_for_status()
        head = response.json()["head"]
    return time.perf_counter() - started


def timed_ms(call: Any, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def summary_ms(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "p50": round(statistics.median(ordered), 1),
        "p95": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 1),
        "n": len(ordered),
    }


def browser_runs(base: str, token: str, links: int, opens: int) -> dict[str, Any]:
    from playwright.sync_api import expect, sync_playwright

    document: list[float] = []
    first_rows: list[float] = []
    all_rows: list[float] = []
    with sync_playwright() as playwright:
        # The seeded links name no images or icons; no host name but 127.0.0.1 resolves, so nothing leaves the machine.
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
        )
        for run in range(opens):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(f"{base}/#token={token}")
            expect(page.locator("li.link")).to_have_count(50, timeout=60_000)
            # Navigation start → the first page of rows in the DOM, by the page's own user timing mark.
            first_rows.append(page.evaluate("() => performance.getEntriesByName('linkproc:page-shown')[0].startTime"))
            document.append(page.evaluate("() => performance.getEntriesByType('navigation')[0].responseEnd"))
            if run < 3:
                # A filter that matches nothing makes the page load every page of links.
                typed = page.evaluate("() => performance.now()")
                page.fill("#text-filter", "no-such-words-anywhere")
                expect(page.locator("li.link")).to_have_count(links, timeout=300_000)
                expect(page.locator("#list-note")).to_contain_text(f"0 of {links} loaded", timeout=60_000)
                done = page.evaluate("() => performance.getEntriesByName('linkproc:list-complete')[0].startTime")
                all_rows.append(done - typed)
            context.close()
        browser.close()
    return {
        "document_ms": summary_ms(document),
        "first_rows_ms": summary_ms(first_rows),
        "all_rows_ms": summary_ms(all_rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 links instead of 5,000")
    parser.add_argument("--links", type=int, default=None, help="links to seed (overrides --quick)")
    parser.add_argument("--opens", type=int, default=5, help="cold page opens to time")
    args = parser.parse_args()
    links = args.links or (1000 if args.quick else 5000)

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray import serve

    from linkproc_ray.adapters.front_door import local_front_door, ray_environment
    from linkproc_ray.adapters.serve import build_app
    from linkproc_ray.api.auth import issue_token
    from linkproc_ray.config import NAMESPACE, load_settings

    overrides = {"data_dir": tempfile.mkdtemp(prefix="linkproc-web-bench-"), "jwt_secret": SECRET}
    settings = load_settings(**overrides)
    port = free_port()
    with ray_environment(local_front_door()):  # the front door `linkproc up` has
        ray.init(address="local", namespace=NAMESPACE, include_dashboard=False, logging_level="WARNING")
    serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config={"enable_access_log": False})
    serve.run(build_app(overrides), name=settings.serve_app_name, route_prefix="/")
    base = f"http://127.0.0.1:{port}"
    org = "webbench"
    token = issue_token(settings, org)
    try:
        with httpx.Client(
            base_url=f"{base}/v1/orgs/{org}", headers={"Authorization": f"Bearer {token}"}, timeout=120
        ) as api:
            seed_s = seed(api, links)
            api.get("/links", params={"limit": 50}).raise_for_status()  # the actor's first read warms its caches
            api_ms = {
                "first_page_50": summary_ms(timed_ms(lambda: api.get("/links", params={"limit": 50}), 30)),
                "page_200": summary_ms(timed_ms(lambda: api.get("/links", params={"limit": 200}), 15)),
                "failed_filter_50": summary_ms(
                    timed_ms(lambda: api.get("/links", params={"limit": 50, "processing": "failed"}), 15)
                ),
                "head": summary_ms(timed_ms(lambda: api.get("/events", params={"after": 0, "limit": 1}), 30)),
            }
        page = browser_runs(base, token, links, args.opens)
    finally:
        serve.shutdown()
        ray.shutdown()

    result = {
        "links": links,
        "mode": "quick" if args.quick else "full",
        "seed_s": round(seed_s, 1),
        "api_ms": api_ms,
        **page,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{links} links in one org (seeded in {seed_s:.1f} s)\n")
    print("| what | p50 ms | p95 ms | n |")
    print("| --- | ---: | ---: | ---: |")
    names = {
        "first_page_50": "GET /links?limit=50",
        "page_200": "GET /links?limit=200",
        "failed_filter_50": "GET /links?limit=50&processing=failed",
        "head": "GET /events?after=0&limit=1 (the head)",
    }
    rows = {names[k]: v for k, v in api_ms.items()}
    rows |= {
        "page open → its HTML received": page["document_ms"],
        "page open → first 50 rows shown": page["first_rows_ms"],
        f"text filter → all {links} rows loaded": page["all_rows_ms"],
    }
    for name, s in rows.items():
        print(f"| {name} | {s['p50']:,.1f} | {s['p95']:,.1f} | {s['n']} |")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
