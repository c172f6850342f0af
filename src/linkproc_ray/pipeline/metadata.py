"""Link-preview metadata (title, description, image, icon, site, canonical URL) from HTML.

Precedence, the same whatever the order of the tags in the document (within
one source, the first value found wins):

- title, description, image: JSON-LD article (Article, NewsArticle,
  BlogPosting, ...) > OpenGraph > Twitter card > JSON-LD WebPage > HTML
  (``<title>``, then the first ``<h1>``; ``<meta name=description>``).
- site_name: ``og:site_name`` > JSON-LD publisher name (or WebSite name) >
  ``<meta name=application-name>``.
- canonical_url: ``<link rel=canonical>`` > ``og:url`` > JSON-LD ``url`` /
  ``mainEntityOfPage``.
- favicon: ``rel=icon`` / ``shortcut icon`` > ``apple-touch-icon`` >
  ``/favicon.ico`` of ``url``.

Text has entities decoded and whitespace collapsed, and is capped; URLs are
resolved against ``url`` and kept only if http(s) and at most 2,048 characters.
"""

from __future__ import annotations

import html as html_entities
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup
from bs4.element import Tag

from linkproc_ray.core.limits import MAX_URL_LENGTH
from linkproc_ray.pipeline.page import PageMetadata

MAX_TITLE = 300
MAX_DESCRIPTION = 1000
MAX_SITE_NAME = 300

_ARTICLE_TYPES = frozenset(
    {
        "article",
        "newsarticle",
        "blogposting",
        "reportagenewsarticle",
        "analysisnewsarticle",
        "opinionnewsarticle",
        "backgroundnewsarticle",
        "reviewnewsarticle",
        "askpublicnewsarticle",
        "techarticle",
        "scholarlyarticle",
        "report",
        "socialmediaposting",
        "liveblogposting",
        "discussionforumposting",
    }
)
_SITE_TYPES = frozenset({"website", "organization", "newsmediaorganization"})
_JSON_LD_MAX_NODES = 2000  # bounds the walk over hostile or huge JSON-LD
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class _Source:
    """Candidate values from one kind of markup; the first value set wins."""

    title: str | None = None
    description: str | None = None
    image: str | None = None
    site_name: str | None = None
    url: str | None = None

    def offer(self, field: str, value: str | None) -> None:
        if value and getattr(self, field) is None:
            setattr(self, field, value)


def extract_metadata(html: str, url: str) -> PageMetadata:
    """Metadata of the page ``html`` fetched from (final) ``url``; never raises on bad HTML."""
    soup = BeautifulSoup(html, "lxml")
    article, webpage, site = _json_ld(soup)
    og, twitter, page = _meta_tags(soup)
    page.offer("title", _tag_text(soup.find("title")) or _tag_text(soup.find("h1")))
    page.offer("url", _link_href(soup, lambda rels: "canonical" in rels))
    ordered = (article, og, twitter, webpage, page)

    def first(field: str, sources: tuple[_Source, ...] = ordered) -> str | None:
        return next((value for s in sources if (value := getattr(s, field)) is not None), None)

    title = _text(first("title"), MAX_TITLE)
    description = _text(first("description"), MAX_DESCRIPTION)
    site_name = _text(first("site_name", (og, article, site, webpage, page)), MAX_SITE_NAME)
    return PageMetadata(
        title=title,
        description=description,
        image=_first_url(url, (s.image for s in ordered)),
        favicon=_favicon(soup, url),
        site_name=site_name,
        canonical_url=_first_url(url, (page.url, og.url, article.url, webpage.url)),
    )


def _meta_tags(soup: BeautifulSoup) -> tuple[_Source, _Source, _Source]:
    """OpenGraph, Twitter card and plain HTML values from ``<meta>`` tags."""
    og, twitter, page = _Source(), _Source(), _Source()
    for meta in soup.find_all("meta"):
        if not isinstance(meta, Tag):
            continue
        # OpenGraph uses property=, Twitter name=, yet pages mix them up.
        key = _attr(meta, "property") or _attr(meta, "name") or _attr(meta, "itemprop")
        content = _attr(meta, "content")
        if not key or not content:
            continue
        key = key.strip().lower()
        match key:
            case "og:title":
                og.offer("title", content)
            case "og:description":
                og.offer("description", content)
            case "og:image" | "og:image:url" | "og:image:secure_url":
                og.offer("image", content)
            case "og:site_name":
                og.offer("site_name", content)
            case "og:url":
                og.offer("url", content)
            case "twitter:title":
                twitter.offer("title", content)
            case "twitter:description":
                twitter.offer("description", content)
            case "twitter:image" | "twitter:image:src":
                twitter.offer("image", content)
            case "description":
                page.offer("description", content)
            case "application-name":
                page.offer("site_name", content)
    return og, twitter, page


def _json_ld(soup: BeautifulSoup) -> tuple[_Source, _Source, _Source]:
    """Article, WebPage and site (WebSite/Organization) values from JSON-LD blocks."""
    article, webpage, site = _Source(), _Source(), _Source()
    for node in _json_ld_nodes(soup):
        types = _types(node)
        if types & _ARTICLE_TYPES:
            target = article
        elif any(t.endswith("page") for t in types):
            target = webpage
        elif types & _SITE_TYPES:
            site.offer("site_name", _json_text(node.get("name")))
            continue
        else:
            continue
        target.offer("title", _json_text(node.get("headline")) or _json_text(node.get("name")))
        target.offer("description", _json_text(node.get("description")))
        target.offer("image", _json_url(node.get("image")) or _json_url(node.get("thumbnailUrl")))
        target.offer("url", _json_url(node.get("url")) or _json_url(node.get("mainEntityOfPage")))
        publisher = node.get("publisher")
        if isinstance(publisher, list):
            publisher = publisher[0] if publisher else None
        if isinstance(publisher, dict):
            target.offer("site_name", _json_text(publisher.get("name")))
    return article, webpage, site


def _json_ld_nodes(soup: BeautifulSoup) -> Iterator[dict[str, Any]]:
    """Every JSON object in the page's JSON-LD, @graph and lists flattened, document order."""
    budget = _JSON_LD_MAX_NODES
    for script in soup.find_all("script"):
        if not isinstance(script, Tag) or "ld+json" not in (_attr(script, "type") or "").lower():
            continue
        data = _load_json(script.string or script.get_text())
        stack: list[Any] = [data]
        while stack and budget > 0:
            item = stack.pop()
            budget -= 1
            if isinstance(item, list):
                stack.extend(reversed(item))
            elif isinstance(item, dict):
                yield item
                # An Article is often the @graph member or the WebPage's mainEntity.
                for key in ("mainEntity", "@graph"):
                    child = item.get(key)
                    if isinstance(child, list | dict):
                        stack.append(child)


def _load_json(text: str) -> Any:
    # Pages wrap JSON-LD in HTML comments or CDATA, and put raw newlines in strings.
    text = text.strip().removeprefix("<!--").removesuffix("-->").strip()
    text = text.removeprefix("//<![CDATA[").removesuffix("//]]>").strip()
    try:
        return json.loads(text, strict=False)
    except (ValueError, RecursionError):
        return None


def _types(node: dict[str, Any]) -> set[str]:
    """Lowercase schema.org type names, without any ``schema:`` or URL prefix."""
    raw = node.get("@type")
    names = raw if isinstance(raw, list) else [raw]
    return {re.split(r"[/:#]", n)[-1].lower() for n in names if isinstance(n, str)}


def _json_text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("@value") or value.get("name")
    return value if isinstance(value, str) else None


def _json_url(value: Any) -> str | None:
    """A URL from a schema.org value: a string, an ImageObject-like object or a list of them."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("url") or value.get("contentUrl") or value.get("@id")
    return value if isinstance(value, str) else None


def _favicon(soup: BeautifulSoup, url: str) -> str | None:
    icon = _link_href(soup, lambda rels: "icon" in rels) or _link_href(
        soup, lambda rels: "apple-touch-icon" in rels or "apple-touch-icon-precomposed" in rels
    )
    return _first_url(url, (icon, "/favicon.ico"))


def _link_href(soup: BeautifulSoup, wanted: Callable[[set[str]], bool]) -> str | None:
    """The href of the first ``<link>`` whose rel tokens satisfy ``wanted``."""
    for link in soup.find_all("link"):
        if not isinstance(link, Tag):
            continue
        rel = link.get("rel")
        tokens = {t.lower() for t in (rel if isinstance(rel, list) else str(rel or "").split())}
        href = _attr(link, "href")
        if href and wanted(tokens):
            return href
    return None


def _attr(tag: Tag, name: str) -> str | None:
    value = tag.get(name)
    if isinstance(value, list):
        return " ".join(value)
    return value


def _tag_text(tag: object) -> str | None:
    return tag.get_text(" ") if isinstance(tag, Tag) else None


def _text(value: str | None, cap: int) -> str | None:
    """Entities decoded (again: sites double-escape), whitespace collapsed, capped."""
    if value is None:
        return None
    value = " ".join(_CONTROL_CHARS.sub(" ", html_entities.unescape(value)).split())
    return value[:cap].rstrip() or None


def _first_url(base: str, candidates: Iterable[str | None]) -> str | None:
    """The first candidate that resolves against ``base`` to an http(s) URL of acceptable length."""
    for candidate in candidates:
        resolved = _resolve_url(base, candidate)
        if resolved is not None:
            return resolved
    return None


def _resolve_url(base: str, value: str | None) -> str | None:
    if not value:
        return None
    value = _CONTROL_CHARS.sub("", html_entities.unescape(value)).strip().replace(" ", "%20")
    try:
        resolved = urljoin(base, value)
        parts = urlsplit(resolved)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or len(resolved) > MAX_URL_LENGTH:
        return None
    return resolved
