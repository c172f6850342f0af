"""The SDK's typed read model: a link as every replica materializes it (the API's ``Link`` object)."""

from __future__ import annotations

from dataclasses import dataclass

from linkproc_ray.core.types import JSON


@dataclass(frozen=True, slots=True)
class Processing:
    """Where the enrichment of a link stands (``status`` is ``None`` until the processor starts)."""

    status: str | None
    error: str | None
    attempts: int
    updated_at: str | None


@dataclass(frozen=True, slots=True)
class Metadata:
    """The newest metadata snapshot of a link's page."""

    title: str | None
    description: str | None
    image: str | None
    favicon: str | None
    site_name: str | None
    canonical_url: str | None
    fetched_at: str


@dataclass(frozen=True, slots=True)
class LinkSummary:
    """The newest summary of a link's page."""

    text: str
    model: str
    summarized_at: str


@dataclass(frozen=True, slots=True)
class Link:
    """A saved link as every replica materializes it."""

    id: str
    url: str
    domain: str
    status: str
    source: str | None
    created_at: str
    completed_at: str | None
    deleted_at: str | None
    processing: Processing
    metadata: Metadata | None
    summary: LinkSummary | None
    tags: tuple[str, ...] = ()
    suggested_tags: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: JSON) -> Link:
        """From the API's ``Link`` object."""
        p, m, s = data["processing"], data["metadata"], data["summary"]
        return cls(
            id=data["id"],
            url=data["url"],
            domain=data["domain"],
            status=data["status"],
            source=data.get("source"),
            created_at=data["createdAt"],
            completed_at=data["completedAt"],
            deleted_at=data["deletedAt"],
            processing=Processing(p["status"], p["error"], p.get("attempts", 0), p["updatedAt"]),
            metadata=None
            if m is None
            else Metadata(
                m["title"], m["description"], m["image"], m["favicon"], m["siteName"], m["canonicalUrl"], m["fetchedAt"]
            ),
            summary=None if s is None else LinkSummary(s["text"], s["model"], s["summarizedAt"]),
            tags=tuple(data.get("tags", ())),
            suggested_tags=tuple(data.get("suggestedTags", ())),
        )


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """What became of one entry of an imported file: ``position`` is its place in the file, from 1."""

    position: int
    url: str
    outcome: str
    """``created``, ``exists`` (saved before), ``duplicate`` (earlier in the same file) or ``invalid``."""
    id: str | None = None
    reason: str | None = None
