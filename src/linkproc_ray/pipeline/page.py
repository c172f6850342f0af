"""What parsing a page yields, as plain data: light to import where pages are only passed on.

The processor receives these from parse workers; keeping them apart from the
parsers means unpickling one never loads lxml, BeautifulSoup or trafilatura.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageMetadata:
    """What a link preview shows; every field is optional."""

    title: str | None = None
    description: str | None = None
    image: str | None = None
    favicon: str | None = None
    site_name: str | None = None
    canonical_url: str | None = None


@dataclass(frozen=True)
class ParsedPage:
    """Metadata and main text (``None`` when the page has too little) of one page."""

    metadata: PageMetadata
    text: str | None
