"""Parse a fetched page into metadata and readable text, in one picklable CPU-bound call.

A top-level function of plain data, so Ray tasks and process pools can run it.
"""

from __future__ import annotations

from dataclasses import dataclass

from linkproc_ray.pipeline.content import extract_text
from linkproc_ray.pipeline.metadata import PageMetadata, extract_metadata


@dataclass(frozen=True)
class ParsedPage:
    """Metadata and main text (``None`` when the page has too little) of one page."""

    metadata: PageMetadata
    text: str | None


def parse_page(html: str, url: str) -> ParsedPage:
    """Metadata and main text of ``html`` fetched from (final) ``url``; never raises on bad HTML."""
    return ParsedPage(metadata=extract_metadata(html, url), text=extract_text(html, url))
