"""Fetcher behaviour against a real page server on 127.0.0.1 (allowlisted for these tests)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from tests.pages import PageServer, Reply

from linkproc_ray.errors import (
    FetchBlocked,
    FetchConnect,
    FetchDNS,
    FetchHTTPStatus,
    FetchTimeout,
    FetchTooLarge,
    FetchTooManyRedirects,
    FetchUnsupportedType,
)
from linkproc_ray.pipeline.fetch import DEFAULT_USER_AGENT, Fetcher, FetchLimits, decode_html
from linkproc_ray.pipeline.ssrf import FetchPolicy

FAST = FetchLimits(
    total_timeout=3.0, max_bytes=200_000, max_redirects=3, retries=2, backoff_base=0.01, retry_after_cap=1.0
)
PAGE = "<!doctype html><html><head><title>Hello</title></head><body><p>Hi there</p></body></html>"


class FakeResolver:
    """Resolves names from a fixed table, so tests can point a name at any address."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    async def resolve(self, host: str, port: int) -> list[str]:
        if host not in self.table:
            raise FetchDNS(f"{host} not in the fake table")
        return self.table[host]


@pytest.fixture
async def fetcher(page_server: PageServer) -> AsyncIterator[Fetcher]:
    fetcher = Fetcher(FetchPolicy(allow_hosts=frozenset({page_server.host_port})), FAST)
    yield fetcher
    await fetcher.aclose()


async def test_fetches_an_html_page_with_its_final_url_and_encoding(page_server: PageServer, fetcher: Fetcher) -> None:
    url = page_server.page("/ok", PAGE)

    page = await fetcher.fetch(url)

    assert (page.url, page.status, page.content_type, page.encoding) == (url, 200, "text/html", "utf-8")
    assert "<title>Hello</title>" in page.html


async def test_sends_the_project_user_agent(page_server: PageServer, fetcher: Fetcher) -> None:
    await fetcher.fetch(page_server.page("/ua", PAGE))

    assert page_server.requests[-1].headers["User-Agent"] == DEFAULT_USER_AGENT
    assert DEFAULT_USER_AGENT.startswith("linkproc-ray/")


async def test_follows_redirects_and_reports_the_final_url(page_server: PageServer, fetcher: Fetcher) -> None:
    final = page_server.page("/final", PAGE)
    page_server.redirect("/hop2", "/final", status=301)
    start = page_server.redirect("/hop1", page_server.url("/hop2#fragment"), status=307)

    page = await fetcher.fetch(start)

    assert page.url == final


async def test_redirect_loop_is_too_many_redirects(page_server: PageServer, fetcher: Fetcher) -> None:
    page_server.redirect("/a", "/b")
    page_server.redirect("/b", "/a")

    with pytest.raises(FetchTooManyRedirects):
        await fetcher.fetch(page_server.url("/a"))


async def test_more_redirects_than_allowed_is_too_many_redirects(page_server: PageServer, fetcher: Fetcher) -> None:
    for hop in range(FAST.max_redirects + 1):
        page_server.redirect(f"/r{hop}", f"/r{hop + 1}")
    page_server.page(f"/r{FAST.max_redirects + 1}", PAGE)

    with pytest.raises(FetchTooManyRedirects):
        await fetcher.fetch(page_server.url("/r0"))
    assert page_server.hits(f"/r{FAST.max_redirects + 1}") == 0


async def test_redirect_to_a_private_address_is_blocked(page_server: PageServer) -> None:
    page_server.redirect("/to-private", "http://evil.test/latest/meta-data/")
    resolver = FakeResolver({"evil.test": ["10.0.0.1"]})
    fetcher = Fetcher(FetchPolicy(allow_hosts=frozenset({page_server.host_port})), FAST, resolver=resolver)

    with pytest.raises(FetchBlocked):
        await fetcher.fetch(page_server.url("/to-private"))
    await fetcher.aclose()


async def test_redirect_to_a_loopback_address_that_is_not_allowlisted_is_blocked(
    page_server: PageServer, fetcher: Fetcher
) -> None:
    page_server.redirect("/to-loopback", f"http://127.0.0.2:{page_server.port}/")

    with pytest.raises(FetchBlocked):
        await fetcher.fetch(page_server.url("/to-loopback"))


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://example.com/", "http://user:pw@example.com/"])
async def test_redirect_to_a_non_http_or_credentialed_url_is_blocked(
    page_server: PageServer, fetcher: Fetcher, location: str
) -> None:
    page_server.redirect("/away", location)

    with pytest.raises(FetchBlocked):
        await fetcher.fetch(page_server.url("/away"))


async def test_default_policy_refuses_loopback(page_server: PageServer) -> None:
    fetcher = Fetcher(FetchPolicy(), FAST)

    with pytest.raises(FetchBlocked):
        await fetcher.fetch(page_server.page("/ok", PAGE))
    await fetcher.aclose()
    assert page_server.hits("/ok") == 0


async def test_name_resolving_to_private_address_is_blocked_before_connecting(page_server: PageServer) -> None:
    resolver = FakeResolver({"evil.test": ["127.0.0.1"]})
    fetcher = Fetcher(FetchPolicy(), FAST, resolver=resolver)

    with pytest.raises(FetchBlocked):
        await fetcher.fetch(f"http://evil.test:{page_server.port}/")
    await fetcher.aclose()
    assert page_server.requests == []


async def test_allowlisted_name_connects_to_the_address_it_was_checked_with(page_server: PageServer) -> None:
    page_server.page("/named", PAGE)
    resolver = FakeResolver({"pages.test": ["127.0.0.1"]})
    fetcher = Fetcher(FetchPolicy(allow_hosts=frozenset({f"pages.test:{page_server.port}"})), FAST, resolver=resolver)

    page = await fetcher.fetch(f"http://pages.test:{page_server.port}/named")
    await fetcher.aclose()

    assert page.status == 200
    assert page_server.requests[-1].headers["Host"] == f"pages.test:{page_server.port}"


async def test_unresolvable_name_is_dns_error(fetcher: Fetcher) -> None:
    with pytest.raises(FetchDNS):
        await Fetcher(FetchPolicy(), FAST, resolver=FakeResolver({})).fetch("http://nowhere.test/")


async def test_404_is_fetch_404_without_retries(page_server: PageServer, fetcher: Fetcher) -> None:
    with pytest.raises(FetchHTTPStatus) as raised:
        await fetcher.fetch(page_server.url("/missing"))

    assert raised.value.code == "fetch:404"
    assert page_server.hits("/missing") == 1


async def test_500_is_retried_then_reported(page_server: PageServer, fetcher: Fetcher) -> None:
    url = page_server.reply("/broken", Reply(status=500, body=b"oops"))

    with pytest.raises(FetchHTTPStatus) as raised:
        await fetcher.fetch(url)

    assert raised.value.code == "fetch:500"
    assert page_server.hits("/broken") == 1 + FAST.retries


async def test_503_then_success_returns_the_page(page_server: PageServer, fetcher: Fetcher) -> None:
    ok = Reply(body=PAGE.encode(), headers={"Content-Type": "text/html"})
    url = page_server.sequence("/flaky", Reply(status=503), ok)

    page = await fetcher.fetch(url)

    assert page.status == 200
    assert page_server.hits("/flaky") == 2


@pytest.mark.parametrize("retry_after", ["1", "3", "http-date in 120 s"])
async def test_429_waits_for_retry_after_up_to_the_cap_then_succeeds(
    page_server: PageServer, fetcher: Fetcher, retry_after: str
) -> None:
    if retry_after.startswith("http-date"):
        # Made now, not at collection: a date taken minutes earlier may already have passed.
        retry_after = email.utils.formatdate(time.time() + 120, usegmt=True)
    ok = Reply(body=PAGE.encode(), headers={"Content-Type": "text/html"})
    url = page_server.sequence("/limited", Reply(status=429, headers={"Retry-After": retry_after}), ok)

    started = time.monotonic()
    page = await fetcher.fetch(url)
    waited = time.monotonic() - started

    assert page.status == 200
    assert page_server.hits("/limited") == 2
    # At least the cap, and well short of what the server asked for (3 s or 120 s).
    assert FAST.retry_after_cap - 0.1 <= waited < 2.9


async def test_retry_after_longer_than_the_budget_gives_up_with_the_status(page_server: PageServer) -> None:
    limits = FetchLimits(total_timeout=1.0, retries=2, backoff_base=0.01, retry_after_cap=30.0)
    fetcher = Fetcher(FetchPolicy(allow_hosts=frozenset({page_server.host_port})), limits)
    url = page_server.reply("/busy", Reply(status=429, headers={"Retry-After": "20"}))

    started = time.monotonic()
    with pytest.raises(FetchHTTPStatus) as raised:
        await fetcher.fetch(url)
    await fetcher.aclose()

    assert raised.value.code == "fetch:429"
    assert time.monotonic() - started < 0.9
    assert page_server.hits("/busy") == 1


async def test_gzip_bomb_stops_at_the_byte_cap(page_server: PageServer, fetcher: Fetcher) -> None:
    with pytest.raises(FetchTooLarge):
        await fetcher.fetch(page_server.gzip_bomb("/bomb"))


async def test_page_over_the_byte_cap_is_too_large(page_server: PageServer) -> None:
    fetcher = Fetcher(FetchPolicy(allow_hosts=frozenset({page_server.host_port})))  # the real 5 MB cap
    url = page_server.page("/huge", b"<html><body>" + b"a" * 10_000_000 + b"</body></html>")

    with pytest.raises(FetchTooLarge):
        await fetcher.fetch(url)
    await fetcher.aclose()


async def test_endless_chunked_stream_stops_at_the_cap(page_server: PageServer, fetcher: Fetcher) -> None:
    with pytest.raises((FetchTooLarge, FetchTimeout)):
        await fetcher.fetch(page_server.endless("/endless"))


async def test_slow_drip_past_the_total_budget_times_out(page_server: PageServer) -> None:
    limits = FetchLimits(total_timeout=0.8, attempt_timeout=5.0)
    fetcher = Fetcher(FetchPolicy(allow_hosts=frozenset({page_server.host_port})), limits)

    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        await fetcher.fetch(page_server.drip("/drip", interval=0.1))
    await fetcher.aclose()

    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("content_type", ["application/pdf", "image/png", "application/json", "text/plain"])
async def test_non_html_is_unsupported_type(page_server: PageServer, fetcher: Fetcher, content_type: str) -> None:
    with pytest.raises(FetchUnsupportedType):
        await fetcher.fetch(page_server.page("/file", b"%PDF-1.7 ...", content_type=content_type))


async def test_xhtml_is_accepted(page_server: PageServer, fetcher: Fetcher) -> None:
    page = await fetcher.fetch(page_server.page("/x", PAGE, content_type="application/xhtml+xml"))

    assert page.content_type == "application/xhtml+xml"


async def test_missing_content_type_is_sniffed_as_html(page_server: PageServer, fetcher: Fetcher) -> None:
    page = await fetcher.fetch(page_server.page("/untyped", PAGE, content_type=None))

    assert page.content_type == "text/html"


async def test_missing_content_type_on_binary_is_unsupported(page_server: PageServer, fetcher: Fetcher) -> None:
    with pytest.raises(FetchUnsupportedType):
        await fetcher.fetch(page_server.page("/blob", b"\x89PNG\r\n\x1a\n\0\0", content_type=None))


async def test_latin1_page_declared_only_in_meta_is_decoded(page_server: PageServer, fetcher: Fetcher) -> None:
    body = '<html><head><meta charset="iso-8859-1"><title>Café Zürich</title></head></html>'.encode("latin-1")

    page = await fetcher.fetch(page_server.page("/latin1", body, content_type="text/html"))

    assert "Café Zürich" in page.html


async def test_wrong_header_charset_falls_back_to_meta(page_server: PageServer, fetcher: Fetcher) -> None:
    body = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252"><title>naïve “quotes”</title></head></html>'
    url = page_server.page("/wrong", body.encode("cp1252"), content_type="text/html; charset=utf-8")

    page = await fetcher.fetch(url)

    assert "naïve “quotes”" in page.html
    assert page.encoding == "cp1252"


def test_undeclared_charset_is_detected() -> None:
    body = (
        "<html><body><p>" + "Grüße aus Köln, schöne Straße, übermäßig große Äpfel. " * 20 + "</p></body></html>"
    ).encode("latin-1")

    text, _ = decode_html(body, None)

    assert "Grüße aus Köln" in text


def test_byte_order_mark_wins_over_declarations() -> None:
    text, encoding = decode_html(b"\xef\xbb\xbf<meta charset=latin-1>\xc3\xa9", "iso-8859-1")

    assert (text, encoding) == ("<meta charset=latin-1>é", "utf-8")


@pytest.mark.parametrize("url", ["ftp://example.com/", "javascript:alert(1)", "http://user:pw@127.0.0.1/", "/relative"])
async def test_unfetchable_urls_are_blocked_without_a_request(fetcher: Fetcher, url: str) -> None:
    with pytest.raises(FetchBlocked):
        await fetcher.fetch(url)


# -- error mapping, where no real server can produce the failure on demand --


def _failing_transport(exc: Exception) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (httpx.ConnectError("refused"), FetchConnect),
        (httpx.ReadError("reset"), FetchConnect),
        (httpx.RemoteProtocolError("peer closed"), FetchConnect),
        (httpx.ConnectTimeout("slow"), FetchTimeout),
        (httpx.ReadTimeout("slow"), FetchTimeout),
        (httpx.PoolTimeout("busy"), FetchTimeout),
        (httpx.UnsupportedProtocol("gopher"), FetchBlocked),
    ],
)
async def test_transport_errors_map_to_fetch_errors(raised: Exception, expected: type[Exception]) -> None:
    fetcher = Fetcher(FetchPolicy(), FAST, transport=_failing_transport(raised))

    with pytest.raises(expected) as caught:
        await fetcher.fetch("http://example.com/")
    await fetcher.aclose()

    assert caught.value.__cause__ is raised


async def test_transient_transport_errors_are_retried() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectError("refused")
        return httpx.Response(200, headers={"Content-Type": "text/html"}, content=PAGE.encode())

    fetcher = Fetcher(FetchPolicy(), FAST, transport=httpx.MockTransport(handler))
    page = await fetcher.fetch("http://example.com/")
    await fetcher.aclose()

    assert page.status == 200
    assert len(calls) == 2
