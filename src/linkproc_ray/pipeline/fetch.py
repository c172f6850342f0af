"""Fetch one web page politely and defensively, for enrichment.

Everything that can go wrong ends as a :class:`~linkproc_ray.errors.FetchError`
subclass, whose ``code`` becomes the user-visible ``fetch:*`` failure.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import email.utils
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import charset_normalizer
import httpcore
import httpx

from linkproc_ray import __version__
from linkproc_ray.core.backoff import Backoff
from linkproc_ray.errors import (
    FetchBlocked,
    FetchConnect,
    FetchHTTPStatus,
    FetchRetryable,
    FetchTimeout,
    FetchTooLarge,
    FetchTooManyRedirects,
    FetchUnsupportedType,
)
from linkproc_ray.pipeline.hosts import HostGate, host_of
from linkproc_ray.pipeline.ssrf import (
    FetchPolicy,
    Resolver,
    SystemResolver,
    check_url,
    resolve_checked,
)

DEFAULT_USER_AGENT = f"linkproc-ray/{__version__} (+https://github.com/linkproc/linkproc-ray)"
"""Sent with every request: says who we are and where to read about it."""

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
"""Media types the fetcher accepts."""

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SNIFF_BYTES = 1024
_META_SCAN_BYTES = 4096
# A <meta charset=...> or an http-equiv content="...; charset=..." near the top.
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([a-zA-Z0-9_:.+-]+)""", re.IGNORECASE)
_HTML_SNIFF = re.compile(
    rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body|title|meta)[\s>/]", re.IGNORECASE | re.DOTALL
)
# WHATWG Encoding: pages that say latin-1 or ascii mean windows-1252.
_ENCODING_ALIASES = {"iso8859-1": "cp1252", "ascii": "cp1252"}


@dataclass(frozen=True)
class FetchLimits:
    """Budgets for one fetch; ``total_timeout`` bounds everything, retries and waits included.

    ``attempt_timeout`` bounds each network step (connect, one read) of one attempt.
    """

    total_timeout: float = 15.0
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    retries: int = 2
    backoff_base: float = 0.5
    retry_after_cap: float = 10.0
    attempt_timeout: float = 10.0


@dataclass(frozen=True)
class FetchedPage:
    """An HTML page as fetched: ``url`` is the final URL after redirects."""

    url: str
    status: int
    content_type: str
    html: str
    encoding: str


class _GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Dials only addresses that :func:`resolve_checked` approved, for every connection."""

    def __init__(self, policy: FetchPolicy, resolver: Resolver) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve_checked(host, port, self._policy, self._resolver)
        last_error: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None  # resolve_checked never returns an empty list
        raise last_error


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, dialling through :class:`_GuardedNetworkBackend`."""

    def __init__(self, policy: FetchPolicy, resolver: Resolver) -> None:
        ssl_context = httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False)
        # httpx has no public hook for the network backend; its transport has
        # kept the pool in ``_pool`` since 0.18. The test that the default
        # policy refuses 127.0.0.1 fails loudly if this ever stops working.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedNetworkBackend(policy, resolver),
        )


class Fetcher:
    """Fetches HTML pages under an SSRF policy and the limits in :class:`FetchLimits`.

    ``transport`` replaces the network (tests use ``httpx.MockTransport``); the
    address check happens at connect time, so it does not apply then. A
    ``Retry-After`` is told to ``hosts``, so every fetch to that host waits, not only this one.
    """

    def __init__(
        self,
        policy: FetchPolicy,
        limits: FetchLimits = FetchLimits(),
        resolver: Resolver | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        transport: httpx.AsyncBaseTransport | None = None,
        hosts: HostGate | None = None,
    ) -> None:
        self._limits = limits
        self._hosts = hosts
        timeout = min(limits.attempt_timeout, limits.total_timeout)
        self._client = httpx.AsyncClient(
            transport=transport or _GuardedTransport(policy, resolver or SystemResolver()),
            trust_env=False,  # proxies from the environment would bypass the guard
            follow_redirects=False,  # every hop is re-validated here
            timeout=httpx.Timeout(timeout),
            headers={
                "User-Agent": user_agent,
                "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
                # Only what _BoundedDecoder can inflate within the byte cap.
                "Accept-Encoding": "gzip, deflate",
            },
        )

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._client.aclose()

    async def fetch(self, url: str) -> FetchedPage:
        """Fetch ``url``, following at most ``max_redirects`` re-validated redirects.

        Raises only :class:`FetchError` subclasses, within ``total_timeout``.
        """
        deadline = asyncio.get_running_loop().time() + self._limits.total_timeout
        try:
            async with asyncio.timeout_at(deadline):
                return await self._follow_redirects(url, deadline)
        except TimeoutError as exc:
            raise FetchTimeout(f"no page within {self._limits.total_timeout:g} s") from exc

    async def _follow_redirects(self, url: str, deadline: float) -> FetchedPage:
        seen = {url}
        for _ in range(self._limits.max_redirects + 1):
            outcome = await self._with_retries(url, deadline)
            if isinstance(outcome, FetchedPage):
                return outcome
            url = outcome
            if url in seen:
                raise FetchTooManyRedirects(f"redirect loop back to {url}")
            seen.add(url)
        raise FetchTooManyRedirects(f"more than {self._limits.max_redirects} redirects")

    async def _with_retries(self, url: str, deadline: float) -> FetchedPage | str:
        """One hop: the page, or the URL it redirects to; transient failures retried."""
        loop = asyncio.get_running_loop()
        for attempt in range(self._limits.retries + 1):
            try:
                return await self._attempt(url)
            except FetchRetryable as transient:
                delay = self._backoff(attempt, transient.retry_after)
                if transient.retry_after is not None and self._hosts is not None:
                    self._hosts.pause(host_of(url), delay)  # even after the last attempt: the host asked
                if attempt == self._limits.retries:
                    raise transient.error from transient.__cause__
                if loop.time() + delay >= deadline:
                    # Waiting would only end in fetch:timeout; the cause says more.
                    raise transient.error from transient.__cause__
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        jittered = Backoff(initial=self._limits.backoff_base, maximum=self._limits.retry_after_cap).delay(attempt)
        if retry_after is None:
            return jittered
        return max(jittered, min(retry_after, self._limits.retry_after_cap))

    async def _attempt(self, url: str) -> FetchedPage | str:
        check_url(url)
        with _map_transport_errors():
            async with self._client.stream("GET", url) as response:
                return await self._read_response(response)

    async def _read_response(self, response: httpx.Response) -> FetchedPage | str:
        status = response.status_code
        if status in _REDIRECT_STATUSES and "location" in response.headers:
            return str(response.url.join(response.headers["location"]).copy_with(fragment=None))
        if status == 429 or status >= 500:
            raise FetchRetryable(FetchHTTPStatus(status), _retry_after(response.headers.get("retry-after")))
        if not 200 <= status < 300:
            raise FetchHTTPStatus(status)
        media_type, header_charset = _parse_content_type(response.headers.get("content-type", ""))
        if media_type and media_type not in HTML_TYPES:
            raise FetchUnsupportedType(f"content type {media_type!r} is not HTML")
        body = await _read_capped(response, self._limits.max_bytes)
        if not media_type:
            if not _HTML_SNIFF.match(body[:_SNIFF_BYTES].removeprefix(codecs.BOM_UTF8)):
                raise FetchUnsupportedType("no content type, and the body does not look like HTML")
            media_type = "text/html"
        text, encoding = decode_html(body, header_charset)
        return FetchedPage(url=str(response.url), status=status, content_type=media_type, html=text, encoding=encoding)


@contextlib.contextmanager
def _map_transport_errors() -> Iterator[None]:
    """The one place where httpx's exceptions become our fetch errors."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise FetchRetryable(FetchTimeout(f"attempt timed out: {exc}"), None) from exc
    except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise FetchRetryable(FetchConnect(f"connection failed: {exc}"), None) from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise FetchBlocked(f"not a fetchable URL: {exc}") from exc
    except httpx.DecodingError as exc:
        raise FetchUnsupportedType(f"undecodable body: {exc}") from exc
    except httpx.HTTPError as exc:
        raise FetchConnect(f"HTTP failure: {exc}") from exc


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _parse_content_type(value: str) -> tuple[str, str | None]:
    """Media type (lowercase, "" if absent) and the ``charset`` parameter of a Content-Type."""
    media_type, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, param_value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = param_value.strip().strip("\"'") or None
    return media_type.strip().lower(), charset


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The decoded body; :class:`FetchTooLarge` as soon as it passes ``max_bytes``."""
    if response.is_stream_consumed:
        # A body handed over whole and already decoded, as httpx.MockTransport
        # responses built with content= are: nothing left to bound but its size.
        if len(response.content) > max_bytes:
            raise FetchTooLarge(f"body larger than {max_bytes} bytes")
        return response.content
    decoder = _BoundedDecoder(response.headers.get("content-encoding", ""), max_bytes)
    chunks: list[bytes] = []
    # Raw bytes, so decompression stays under our cap (httpx would inflate a
    # whole network chunk at once: about 1000x its size for a gzip bomb).
    async for raw in response.aiter_raw():
        chunks.append(decoder.feed(raw))
    return b"".join(chunks)


class _BoundedDecoder:
    """Inflates a Content-Encoding without ever producing more than ``limit`` bytes."""

    def __init__(self, content_encoding: str, limit: int) -> None:
        self._room = limit
        self._limit = limit
        encodings = [e.strip().lower() for e in content_encoding.split(",") if e.strip()]
        encodings = [e for e in encodings if e != "identity"]
        if len(encodings) > 1:
            raise FetchUnsupportedType(f"stacked content encodings {content_encoding!r}")
        self._encoding = encodings[0] if encodings else ""
        self._inflater: zlib._Decompress | None
        if self._encoding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self._encoding == "deflate":
            self._inflater = None  # zlib-wrapped or raw: decided on the first bytes
        elif self._encoding:
            raise FetchUnsupportedType(f"content encoding {content_encoding!r} was not asked for")
        else:
            self._inflater = None

    def feed(self, data: bytes) -> bytes:
        """Decoded bytes for ``data``; raises :class:`FetchTooLarge` past the limit."""
        if self._encoding == "deflate" and self._inflater is None and data:
            # RFC 9110 "deflate" is zlib-wrapped, but servers often send raw deflate.
            zlib_header = len(data) >= 2 and (data[0] & 0x0F) == 8 and int.from_bytes(data[:2], "big") % 31 == 0
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)
        if self._inflater is None:
            out = data
        else:
            try:
                out = self._inflater.decompress(data, self._room + 1)
            except zlib.error as exc:
                raise FetchUnsupportedType(f"corrupt {self._encoding} body: {exc}") from exc
        self._room -= len(out)
        if self._room < 0:
            raise FetchTooLarge(f"body larger than {self._limit} bytes")
        return out


def decode_html(body: bytes, header_charset: str | None) -> tuple[str, str]:
    """Decode an HTML body: BOM, then the HTTP charset, then ``<meta>``, then detection.

    A declared charset that cannot decode the bytes is skipped. Returns the
    text and the Python codec name used.
    """
    for bom, name in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if body.startswith(bom):
            return body.decode(name, errors="replace").lstrip("\ufeff"), name
    declared = [header_charset, _meta_charset(body)]
    for label in declared:
        codec = _codec_name(label)
        if codec is None:
            continue
        try:
            return body.decode(codec), codec
        except UnicodeDecodeError:
            continue
    best = charset_normalizer.from_bytes(body).best()
    codec = _codec_name(best.encoding if best is not None else None) or "utf-8"
    return body.decode(codec, errors="replace"), codec


def _meta_charset(body: bytes) -> str | None:
    match = _META_CHARSET.search(body[:_META_SCAN_BYTES])
    if match is None:
        return None
    label = match.group(1).decode("ascii")
    # WHATWG: a <meta> that could be read as ASCII cannot really be UTF-16.
    return "utf-8" if label.lower().startswith("utf-16") else label


def _codec_name(label: str | None) -> str | None:
    """Python's codec name for a charset label, ``None`` if unknown."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip()).name
    except LookupError:
        return None
    return _ENCODING_ALIASES.get(name, name)
