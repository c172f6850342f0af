"""Issue 16's acceptance: a 1,000-link bookmarks file imported with ``linkproc import`` into a local cluster.

Pages come from page servers on several loopback host names (allowlisted),
each counting the requests it serves at once. Checks, each failing the run:
every link ends terminal exactly once; a second import of the same file
creates 0 links; ``linkproc search`` finds a link by a word of its summary;
no host ever served more than ``LINKPROC_FETCH_PER_HOST`` fetches at once.

    python benchmarks/import_acceptance.py              # 1,000 links from 4 hosts
    python benchmarks/import_acceptance.py --links 200  # quicker

Against the system a person runs instead (the issue's acceptance: `make run` in a fresh clone):

    LINKPROC_FETCH_ALLOW_HOSTS=127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5 make run       # one shell
    LINKPROC_TOKEN=$(.venv/bin/linkproc token --org acme) \
      .venv/bin/python benchmarks/import_acceptance.py --attach http://127.0.0.1:8000   # another

Writes benchmarks/results/import_acceptance.json. The cluster is what
``linkproc up`` starts (Ray in this process, the Serve app on --port);
import_fairness.py reuses its parts.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Self

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests/pages.py and benchmarks/burst.py

from benchmarks.burst import audit_log, pull_log, synthetic_page  # noqa: E402
from benchmarks.local_system import local_system  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SECRET = "import-benchmark-secret-that-is-long-enough-for-hs256"
HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")

JSON = dict[str, Any]


# -- page servers that count requests at once, one process per host name ----------------------


def serve_host(host: str, count: int, delay: float, seed: int, conn: Connection) -> None:
    """Serve ``/synthetic/0..count-1`` on ``host``; answer "peak" with the most requests served at once; stop on "stop"."""
    from tests import pages

    pages._QuietServer.request_queue_size = 256
    sentences = [
        s
        for page in pages.article_ids()
        for s in re.split(r"(?<=[.!?])\s+", pages.load_article(page)[2])
        if 8 <= len(s.split()) <= 40
    ]
    headers = {"Content-Type": "text/html; charset=utf-8"}

    def delayed(body: bytes) -> pages.Route:
        reply = pages.Reply(body=body, headers=headers)

        def route(_: int) -> pages.Reply:
            time.sleep(delay)
            return reply

        return route

    with pages.PageServer(host) as server:
        for number in range(count):
            server.route(f"/synthetic/{number}", delayed(synthetic_page(number, seed, sentences).encode()))
        conn.send(server.port)
        while conn.recv() == "peak":
            conn.send(dict(server.peak_concurrent))


class HostServer:
    """One host's page server process; ``base`` is its URL."""

    def __init__(self, host: str, count: int, delay: float, seed: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=serve_host, args=(host, count, delay, seed, child), daemon=True)
        self.host = host
        self.base = ""

    def __enter__(self) -> Self:
        self._process.start()
        if not self._conn.poll(120):
            raise RuntimeError(f"page server on {self.host} did not start")
        self.base = f"http://{self.host}:{self._conn.recv()}"
        return self

    def peak(self) -> int:
        self._conn.send("peak")
        peaks: dict[str, int] = self._conn.recv()
        return max(peaks.values(), default=0)

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        self._process.join(5)
        if self._process.is_alive():
            self._process.terminate()


@contextmanager
def host_servers(per_host: int, delay: float, seed: int, hosts: Sequence[str] = HOSTS) -> Iterator[list[HostServer]]:
    servers = [HostServer(host, per_host, delay, seed + i) for i, host in enumerate(hosts)]
    for server in servers:
        server.__enter__()
    try:
        yield servers
    finally:
        for server in servers:
            server.__exit__()


def bookmarks_file(path: Path, servers: Sequence[HostServer], links: int, *, start: int = 0) -> list[str]:
    """A Netscape bookmark file of ``links`` URLs spread over the hosts, one folder per host; returns the URLs."""
    urls = [f"{servers[i % len(servers)].base}/synthetic/{start + i // len(servers)}" for i in range(links)]
    lines = ["<!DOCTYPE NETSCAPE-Bookmark-file-1>", '<META CHARSET="UTF-8">', "<DL><p>"]
    for server in servers:
        lines.append(f"<DT><H3>{html.escape(server.host)}</H3><DL><p>")
        lines += [f'<DT><A HREF="{html.escape(u)}">{html.escape(u)}</A>' for u in urls if u.startswith(server.base)]
        lines.append("</DL><p>")
    lines.append("</DL><p>")
    path.write_text("\n".join(lines), "utf-8")
    return urls


# -- the cluster ------------------------------------------------------------------------------


@contextmanager
def local_cluster(port: int, allow_hosts: str, per_host: int) -> Iterator[tuple[str, Any]]:
    """What ``linkproc up`` starts, with a fresh data dir; yields the base URL and the settings."""
    from linkproc_ray.config import load_settings

    data_dir = Path(tempfile.mkdtemp(prefix="linkproc-import-"))
    overrides = {
        "data_dir": str(data_dir),
        "jwt_secret": SECRET,
        "fetch_allow_hosts": allow_hosts,
        "fetch_per_host": per_host,
    }
    settings = load_settings(**overrides)
    try:
        with local_system(overrides, app_name=settings.serve_app_name, port=port) as base:
            yield base, settings
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def attached(base: str) -> Iterator[tuple[str, Any]]:
    """A system someone else started (`make run`): nothing to start or stop."""
    yield base.rstrip("/"), None


def linkproc(base: str, token: str, *args: str) -> Any:
    """Run the ``linkproc`` command with ``--json``, as a person would; its JSON answer."""
    env = {**os.environ, "LINKPROC_URL": base, "LINKPROC_TOKEN": token}
    command = [sys.executable, "-c", "from linkproc_ray.cli import main; main()", *args, "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"linkproc {' '.join(args)} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


async def wait_terminal(
    base: str, org: str, token: str, link_ids: set[str], timeout: float
) -> tuple[list[JSON], float]:
    """Poll the org's log until every link has a terminal event (or ``timeout``); the log and the seconds it took."""
    from linkproc_ray.core.events import TERMINAL_EVENTS

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        while True:
            log = await pull_log(http, org)
            ended = {e["args"]["linkId"] for e in log if e["name"] in TERMINAL_EVENTS}
            if link_ids <= ended or time.perf_counter() - started > timeout:
                return log, time.perf_counter() - started
            await asyncio.sleep(1.0)


def rare_summary_word(log: list[JSON]) -> tuple[str, str] | None:
    """A word (6+ letters) found in exactly one link's summary, and that link: what a person remembers of a page."""
    from linkproc_ray.core.events import LinkSummarized

    words_by_link: dict[str, set[str]] = {}
    for event in log:
        if event["name"] == LinkSummarized.NAME:
            words = {w.lower() for w in re.findall(r"[A-Za-z]{6,}", event["args"]["summary"])}
            words_by_link[event["args"]["linkId"]] = words
    counts = Counter(w for words in words_by_link.values() for w in words)
    for link, words in sorted(words_by_link.items()):
        for word in sorted(words):
            if counts[word] == 1:
                return word, link
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--links", type=int, default=1000)
    parser.add_argument("--per-host", type=int, default=2, help="LINKPROC_FETCH_PER_HOST")
    parser.add_argument("--delay", type=float, default=0.05, help="Seconds each page takes to answer.")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS / "import_acceptance.json")
    parser.add_argument(
        "--attach",
        metavar="URL",
        help="import into this running system (token from LINKPROC_TOKEN) instead of one started here",
    )
    parser.add_argument("--org", default="acme", help="the org to import into (with --attach: the token's)")
    options = parser.parse_args(argv)
    if options.attach and not os.environ.get("LINKPROC_TOKEN"):
        parser.error("--attach needs LINKPROC_TOKEN (linkproc token --org ORG)")

    from linkproc_ray.api.auth import issue_token

    workdir = Path(tempfile.mkdtemp(prefix="linkproc-import-file-"))
    per_server = options.links // len(HOSTS) + 1
    with host_servers(per_server, options.delay, options.seed) as servers:
        allow = ",".join(HOSTS)
        with (
            attached(options.attach) if options.attach else local_cluster(options.port, allow, options.per_host) as (
                base,
                settings,
            )
        ):
            token = os.environ["LINKPROC_TOKEN"] if options.attach else issue_token(settings, options.org, ttl=3600)
            path = workdir / "bookmarks.html"
            bookmarks_file(path, servers, options.links)
            started = time.perf_counter()
            first = linkproc(base, token, "import", str(path))
            import_s = time.perf_counter() - started
            ids = {o["id"] for o in first["outcomes"] if o["outcome"] == "created"}
            log, settle_s = asyncio.run(wait_terminal(base, options.org, token, ids, options.timeout))
            audit = audit_log(log, ids)
            second = linkproc(base, token, "import", str(path))
            remembered = rare_summary_word(log)
            found = False
            if remembered is not None:
                hits = linkproc(base, token, "search", remembered[0], "--limit", "200")
                found = remembered[1] in {hit["id"] for hit in hits}
            peaks = {server.host: server.peak() for server in servers}
    shutil.rmtree(workdir, ignore_errors=True)

    outcomes = Counter(e["args"].get("error", "completed") for e in audit.terminal.values())
    result = {
        "links": options.links,
        "hosts": len(HOSTS),
        "fetch_per_host": options.per_host,
        "page_delay_s": options.delay,
        "first_import": first["counts"],
        "import_seconds": round(import_s, 1),
        "all_terminal_seconds": round(import_s + settle_s, 1),
        "links_per_second": round(len(ids) / (import_s + settle_s), 1),
        "terminal": len(audit.terminal),
        "lost": len(audit.lost),
        "duplicates": len(audit.duplicates),
        "outcomes": dict(outcomes),
        "second_import": second["counts"],
        "search": {"word": remembered[0] if remembered else None, "found": found},
        "peak_concurrent_per_host": peaks,
    }
    checks = {
        "every link terminal exactly once": not audit.lost and not audit.duplicates and len(audit.terminal) == len(ids),
        "second import creates 0": second["counts"]["created"] == 0,
        "search finds a link by a word of its summary": found,
        "no host served more than per-host at once": all(p <= options.per_host for p in peaks.values()),
    }
    result["checks"] = checks
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
