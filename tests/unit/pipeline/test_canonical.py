"""canonicalize_url: one link per page, however it was written; anything else is InvalidURL."""

from __future__ import annotations

import pytest

from linkproc_ray.core.limits import MAX_URL_LENGTH
from linkproc_ray.core.urls import canonicalize_url, domain_of
from linkproc_ray.errors import InvalidURL


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        # scheme and host case, empty path
        ("HTTP://Example.COM", "http://example.com/"),
        ("https://example.com", "https://example.com/"),
        ("  https://example.com/a  ", "https://example.com/a"),
        # path case is significant
        ("https://example.com/Path/To", "https://example.com/Path/To"),
        # default ports dropped, others kept
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:80/a", "https://example.com:80/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        # fragments dropped
        ("https://example.com/a#section-2", "https://example.com/a"),
        ("https://example.com/#", "https://example.com/"),
        # IDNA to punycode, including the UTS 46 mapping of upper case and full stops
        ("https://bücher.example/", "https://xn--bcher-kva.example/"),
        ("https://BÜCHER.example/", "https://xn--bcher-kva.example/"),
        ("https://例え.テスト/パス", "https://xn--r8jz45g.xn--zckzah/%E3%83%91%E3%82%B9"),
        ("https://xn--bcher-kva.example/", "https://xn--bcher-kva.example/"),
        # trailing dot of a fully qualified host
        ("https://example.com./a", "https://example.com/a"),
        # tracking parameters removed, the rest kept in order
        ("https://example.com/a?utm_source=x&utm_medium=y", "https://example.com/a"),
        ("https://example.com/a?id=3&utm_campaign=z&page=2", "https://example.com/a?id=3&page=2"),
        ("https://example.com/a?UTM_Source=x&id=3", "https://example.com/a?id=3"),
        ("https://example.com/?fbclid=1&gclid=2&dclid=3&msclkid=4", "https://example.com/"),
        ("https://example.com/?mc_cid=1&mc_eid=2&yclid=3&_ga=4&igshid=5&q=kept", "https://example.com/?q=kept"),
        # distinct queries stay distinct: order, repeats and empty values are kept
        ("https://example.com/?b=2&a=1", "https://example.com/?b=2&a=1"),
        ("https://example.com/?a=1&a=2", "https://example.com/?a=1&a=2"),
        ("https://example.com/?flag", "https://example.com/?flag"),
        ("https://example.com/?q=a%20b", "https://example.com/?q=a%20b"),
        # unsafe characters escaped once, existing escapes untouched
        ("https://example.com/a b", "https://example.com/a%20b"),
        ("https://example.com/a%2Fb", "https://example.com/a%2Fb"),
        # IP literals
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/"),
        ("http://[2001:DB8::1]:80/", "http://[2001:db8::1]/"),
    ],
)
def test_canonical_form(url: str, canonical: str) -> None:
    assert canonicalize_url(url) == canonical


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a?utm_source=x&id=1#top",
        "https://bücher.example:443/a b?q=1",
        "HTTP://EXAMPLE.COM",
    ],
)
def test_canonicalization_is_idempotent(url: str) -> None:
    once = canonicalize_url(url)

    assert canonicalize_url(once) == once


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "javascript:alert(1)",
        "data:text/html,<h1>hi</h1>",
        "file:///etc/passwd",
        "mailto:someone@example.com",
        "/relative/path",
        "example.com/no-scheme",
        "//example.com/protocol-relative",
        "https://",
        "https:///path-only",
        "https://user:secret@example.com/",
        "https://user@example.com/",
        "https://example.com:99999/",
        "https://example.com:port/",
        "https://exa mple.com/",
        "https://example..com/",
        "https://example.com/\x00",
        "https://example.com/" + "a" * MAX_URL_LENGTH,
        "",
    ],
)
def test_rejected_urls_raise_invalid_url(url: str) -> None:
    with pytest.raises(InvalidURL):
        canonicalize_url(url)


def test_url_of_exactly_the_maximum_length_is_accepted() -> None:
    url = "https://example.com/" + "a" * (MAX_URL_LENGTH - len("https://example.com/"))

    assert canonicalize_url(url) == url


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("https://www.example.com/a", "example.com"),
        ("https://news.example.com/a", "news.example.com"),
        ("https://WWW.Bücher.example/", "xn--bcher-kva.example"),
        ("http://example.com:8080/", "example.com"),
        ("https://wwwexample.com/", "wwwexample.com"),
    ],
)
def test_domain_of_is_the_host_without_www(url: str, domain: str) -> None:
    assert domain_of(url) == domain


def test_domain_of_rejects_what_canonicalize_rejects() -> None:
    with pytest.raises(InvalidURL):
        domain_of("javascript:alert(1)")
