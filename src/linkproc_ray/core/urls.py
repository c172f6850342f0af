"""Canonical link URLs, so one page saved twice (or from two devices) is one link.

Canonicalization is deliberately conservative: it only removes what never
changes the page (fragments, default ports, tracking parameters, case).
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

import idna

from linkproc_ray.core.limits import MAX_URL_LENGTH
from linkproc_ray.errors import InvalidURL

"""Longest URL accepted, before and after canonicalization."""

_DEFAULT_PORTS = {"http": 80, "https": 443}

# Click identifiers and campaign tags: they identify the visitor or the ad,
# never the page. Compared case-insensitively.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "yclid",
        "_ga",
        "_gl",
        "igshid",
        "twclid",
        "ttclid",
        "li_fat_id",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "rb_clickid",
        "s_cid",
    }
)
_TRACKING_PREFIXES = ("utm_",)

# RFC 3986 host characters once IDNA is applied; "_" is tolerated because real
# hosts use it even though DNS host names may not.
_ASCII_HOST = re.compile(r"^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$")
# Characters left as they are when re-quoting path and query: the reserved
# set plus "%" so existing escapes survive unchanged.
_SAFE_PATH = "/:@!$&'()*+,;=-._~%"
_SAFE_QUERY = _SAFE_PATH + "?"


def canonicalize_url(url: str) -> str:
    """Return the canonical form of an absolute http(s) URL.

    Raises :class:`InvalidURL` for anything else: relative or non-http(s) URLs,
    credentials, bad hosts or ports, or more than ``MAX_URL_LENGTH`` characters.
    The result is idempotent: canonicalizing it again returns it unchanged.
    """
    parts = _split(url)
    scheme = parts.scheme.lower()
    host = _canonical_host(parts)
    port = _port(parts)
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = quote(parts.path, safe=_SAFE_PATH) or "/"
    query = _strip_tracking(quote(parts.query, safe=_SAFE_QUERY))
    result = urlunsplit((scheme, netloc, path, query, ""))
    if len(result) > MAX_URL_LENGTH:
        raise InvalidURL(f"URL longer than {MAX_URL_LENGTH} characters once canonical")
    return result


def domain_of(url: str) -> str:
    """The canonical host of ``url`` without a leading ``www.`` (for display and grouping)."""
    host = urlsplit(canonicalize_url(url)).hostname or ""
    return host.removeprefix("www.")


def _split(url: str) -> SplitResult:
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURL(f"URL longer than {MAX_URL_LENGTH} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise InvalidURL("URL contains control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidURL(f"unparsable URL: {exc}") from exc
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise InvalidURL("only absolute http and https URLs are accepted")
    if not parts.netloc:
        raise InvalidURL("URL has no host")
    if "@" in parts.netloc:
        raise InvalidURL("URLs with credentials are refused")
    return parts


def _canonical_host(parts: SplitResult) -> str:
    host = parts.hostname  # lowercased by urllib, brackets removed
    if not host:
        raise InvalidURL("URL has no host")
    if parts.netloc.startswith("["):
        return f"[{host}]"  # IPv6 literal: urlsplit has already validated it
    host = host.rstrip(".")  # "example.com." names the same host
    if host.isascii():
        if not _ASCII_HOST.match(host) or ".." in host:  # also rejects ""
            raise InvalidURL(f"invalid host {host!r}")
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidURL(f"invalid internationalized host {host!r}: {exc}") from exc


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError as exc:
        raise InvalidURL(f"invalid port: {exc}") from exc


def _strip_tracking(query: str) -> str:
    """Drop tracking parameters; keep every other pair verbatim and in order."""
    kept = [pair for pair in query.split("&") if pair and not _is_tracking(pair.split("=", 1)[0])]
    return "&".join(kept)


def _is_tracking(key: str) -> bool:
    key = key.lower()
    return key in TRACKING_PARAMS or key.startswith(_TRACKING_PREFIXES)
