"""A real HTTP page server on 127.0.0.1 for fetch, SSRF and pipeline tests, plus the articles dataset.

Use it as a context manager (``with PageServer() as server: ...``) or through
the ``page_server`` fixture (``from tests.pages import page_server`` in a
conftest). Routes are registered per test: pages, redirects, slow drips,
gzip bombs, endless streams, scripted sequences (e.g. 429 then 200); every
server also serves ``/articles/<page id>`` from the articles dataset (``tests/data/articles``).
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import pytest

ARTICLES_PREFIX = "/articles/"


def articles_dir() -> Path:
    """The articles dataset: ``$LINKPROC_ARTICLES_DIR``, else the copy in ``tests/data/articles``."""
    configured = os.environ.get("LINKPROC_ARTICLES_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent / "data" / "articles"


@functools.cache
def _ground_truth() -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = json.loads((articles_dir() / "ground-truth.json").read_text("utf-8"))
    return data


def article_ids() -> list[str]:
    """Every page id of the dataset, sorted."""
    return sorted(_ground_truth())


def load_article(page_id: str) -> tuple[str, str, str]:
    """``(html, ground-truth URL, ground-truth article body)`` of one dataset page."""
    truth = _ground_truth()[page_id]
    html = gzip.decompress((articles_dir() / "html" / f"{page_id}.html.gz").read_bytes()).decode("utf-8")
    return html, truth["url"], truth["articleBody"]


Body = bytes | Callable[[], Iterator[bytes]]
"""A whole body, or a factory of chunks sent with chunked transfer encoding."""


@dataclass(frozen=True)
class Reply:
    """One scripted response. ``delay`` is slept before each chunk of a streamed body."""

    status: int = 200
    body: Body = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server saw it."""

    method: str
    path: str
    headers: Mapping[str, str]
    at: float = 0.0
    """``time.monotonic()`` when it arrived."""


Route = Callable[[int], Reply]
"""Given how many times the route was hit before (0 on the first hit), the reply."""


class PageServer:
    """A threaded HTTP/1.1 server on an ephemeral 127.0.0.1 port, with per-test routes."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._routes: dict[str, Route] = {}
        self._hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self._concurrent: Counter[str] = Counter()
        self.peak_concurrent: Counter[str] = Counter()
        """The most requests served at once, by the host name of their ``Host`` header."""
        self._httpd = _QuietServer((host, 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False  # endless streams must not hold up shutdown
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> PageServer:
        # A short poll interval keeps stop() (and so each test's teardown) quick.
        serve = functools.partial(self._httpd.serve_forever, poll_interval=0.02)
        self._thread = threading.Thread(target=serve, name="page-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> PageServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def host_port(self) -> str:
        """``"127.0.0.1:PORT"``, the form an allowlist entry takes."""
        return f"{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.host_port}{path}"

    def article_url(self, page_id: str) -> str:
        return self.url(f"{ARTICLES_PREFIX}{page_id}")

    def hits(self, path: str) -> int:
        """How many requests ``path`` (without query) received."""
        with self._lock:
            return self._hits[path]

    # -- routes ------------------------------------------------------------

    def route(self, path: str, route: Route) -> str:
        """Register a scripted route; returns its URL."""
        self._routes[path] = route
        return self.url(path)

    def reply(self, path: str, reply: Reply) -> str:
        """Always answer ``path`` with ``reply``."""
        return self.route(path, lambda _: reply)

    def page(
        self,
        path: str,
        body: str | bytes,
        *,
        status: int = 200,
        content_type: str | None = "text/html; charset=utf-8",
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """A static page; ``content_type=None`` sends no Content-Type at all."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        all_headers = dict(headers or {})
        if content_type is not None:
            all_headers["Content-Type"] = content_type
        return self.reply(path, Reply(status=status, body=data, headers=all_headers))

    def sequence(self, path: str, *replies: Reply) -> str:
        """Successive replies per hit; the last one repeats."""
        return self.route(path, lambda hit: replies[min(hit, len(replies) - 1)])

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        return self.reply(path, Reply(status=status, headers={"Location": location}))

    def drip(self, path: str, *, chunk: bytes = b"<p>drip</p>", interval: float = 0.2, count: int = 1000) -> str:
        """An HTML body sent one small chunk every ``interval`` seconds."""

        def chunks() -> Iterator[bytes]:
            yield b"<!doctype html><html><body>"
            yield from (chunk for _ in range(count))

        return self.reply(path, Reply(body=chunks, headers={"Content-Type": "text/html"}, delay=interval))

    def gzip_bomb(self, path: str, *, inflated_size: int = 50_000_000) -> str:
        """A small gzip body (about 1/1000 of ``inflated_size``) that inflates to zeros."""
        headers = {"Content-Type": "text/html", "Content-Encoding": "gzip"}
        return self.reply(path, Reply(body=_gzipped_zeros(inflated_size), headers=headers))

    def endless(self, path: str, *, chunk: bytes = b"<p>" + b"x" * 16_000 + b"</p>") -> str:
        """A chunked HTML body that never ends (until the client hangs up)."""

        def chunks() -> Iterator[bytes]:
            while True:
                yield chunk

        return self.reply(path, Reply(body=chunks, headers={"Content-Type": "text/html"}))

    # -- serving -----------------------------------------------------------

    def _lookup(self, path: str) -> tuple[Route | None, int]:
        with self._lock:
            hit = self._hits[path]
            self._hits[path] += 1
        route = self._routes.get(path)
        if route is None and path.startswith(ARTICLES_PREFIX):
            route = _article_route(path.removeprefix(ARTICLES_PREFIX))
        return route, hit

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _enter(self, host: str) -> None:
        with self._lock:
            self._concurrent[host] += 1
            self.peak_concurrent[host] = max(self.peak_concurrent[host], self._concurrent[host])

    def _leave(self, host: str) -> None:
        with self._lock:
            self._concurrent[host] -= 1


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up (caps, timeouts, pooled connections) are expected, not errors."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@functools.cache
def _gzipped_zeros(size: int) -> bytes:
    return gzip.compress(b"\0" * size, compresslevel=9)


def _article_route(page_id: str) -> Route | None:
    if page_id not in _ground_truth():
        return None
    html, _, _ = load_article(page_id)
    reply = Reply(body=html.encode("utf-8"), headers={"Content-Type": "text/html; charset=utf-8"})
    return lambda _: reply


def _make_handler(server: PageServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # chunked bodies and keep-alive

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            server._record(RecordedRequest("GET", self.path, dict(self.headers.items()), time.monotonic()))
            host = urlsplit(f"//{self.headers.get('Host', '')}").hostname or ""
            server._enter(host)
            try:
                route, hit = server._lookup(path)
                reply = route(hit) if route is not None else Reply(status=404, body=b"not found")
                self._send(reply)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client hung up: expected for caps and timeouts
            finally:
                server._leave(host)

        def _send(self, reply: Reply) -> None:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if isinstance(reply.body, bytes):
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in reply.body():
                if reply.delay:
                    time.sleep(reply.delay)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

        def log_message(self, format: str, *args: object) -> None:
            """Silent: tests assert on ``requests`` and ``hits`` instead."""

    return Handler


@pytest.fixture
def page_server() -> Iterator[PageServer]:
    """A started :class:`PageServer`, stopped after the test."""
    with PageServer() as server:
        yield server
