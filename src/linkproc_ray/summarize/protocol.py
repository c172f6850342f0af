"""The one summarizer interface: what goes in, what comes out, and who may write it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

SUMMARY_MIN_CHARS = 10
SUMMARY_MAX_CHARS = 600
"""A summary's length in characters, whoever writes it (the schema, the prompt and the rules say the same)."""


@dataclass(frozen=True)
class SummaryRequest:
    """What a summarizer gets: the page and the tags it may reuse or must avoid."""

    url: str
    title: str | None
    description: str | None
    text: str
    existing_tags: tuple[str, ...] = ()
    link_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Summary:
    """A summary that passed ``validate_output``; ``model`` names what wrote it."""

    summary: str
    tags: tuple[str, ...]
    model: str


class Summarizer(Protocol):
    """Turns a page into a validated ``Summary`` or raises an ``AIError``."""

    model: str

    async def summarize(self, request: SummaryRequest) -> Summary: ...
