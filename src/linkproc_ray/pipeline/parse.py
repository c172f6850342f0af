"""Parse a fetched page into metadata and readable text, in one picklable CPU-bound call.

A top-level function of plain data, so Ray tasks and process pools can run it;
callers name it (:data:`~linkproc_ray.pipeline.enricher.PARSE_PAGE`) rather
than import it, so only the processes that parse load its libraries.
"""

from __future__ import annotations

from linkproc_ray.pipeline.content import extract_text
from linkproc_ray.pipeline.metadata import extract_metadata
from linkproc_ray.pipeline.page import ParsedPage


def parse_page(html: str, url: str) -> ParsedPage:
    """Metadata and main text of ``html`` fetched from (final) ``url``; never raises on bad HTML."""
    return ParsedPage(metadata=extract_metadata(html, url), text=extract_text(html, url))
