"""Deterministic projections of the ordered log into the read tables.

Each materializer is a pure function of one event that returns SQL statements;
they read no clock, no randomness and nothing but the event and the tables.
The same log therefore gives byte-identical tables on the backend, the
processor and every client.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from linkproc_ray.core import events as ev
from linkproc_ray.core.events import Event
from linkproc_ray.core.types import JSON

Statement = tuple[str, Sequence[Any]]
Materializer = Callable[[JSON], list[Statement]]

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS links (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    domain TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'unread' CHECK (status IN ('unread', 'completed')),
    source TEXT,
    created_at TEXT NOT NULL,
    completed_at TEXT,
    deleted_at TEXT
);
CREATE INDEX IF NOT EXISTS links_by_url ON links (url) WHERE deleted_at IS NULL;
CREATE TABLE IF NOT EXISTS link_processing_status (
    link_id TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN
        ('pending', 'completed', 'failed', 'cancelled', 'reprocess_requested')),
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT
);
CREATE TABLE IF NOT EXISTS link_snapshots (
    id TEXT PRIMARY KEY,
    link_id TEXT NOT NULL,
    title TEXT,
    description TEXT,
    image TEXT,
    favicon TEXT,
    site_name TEXT,
    canonical_url TEXT,
    fetched_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS link_snapshots_by_link ON link_snapshots (link_id);
CREATE TABLE IF NOT EXISTS link_summaries (
    id TEXT PRIMARY KEY,
    link_id TEXT NOT NULL,
    summary TEXT NOT NULL,
    model TEXT NOT NULL,
    summarized_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS link_summaries_by_link ON link_summaries (link_id);
CREATE TABLE IF NOT EXISTS tags (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    deleted_at TEXT
);
CREATE TABLE IF NOT EXISTS link_tags (
    link_id TEXT NOT NULL,
    tag_id TEXT NOT NULL,
    tagged_at TEXT,
    PRIMARY KEY (link_id, tag_id)
);
CREATE TABLE IF NOT EXISTS tag_suggestions (
    id TEXT PRIMARY KEY,
    link_id TEXT NOT NULL,
    tag_id TEXT,
    name TEXT NOT NULL,
    suggested_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tag_suggestions_by_link ON tag_suggestions (link_id);
"""
"""The read tables; every replica creates exactly these."""

TABLES: Final = (
    "links",
    "link_processing_status",
    "link_snapshots",
    "link_summaries",
    "tags",
    "link_tags",
    "tag_suggestions",
)


def _link_created(a: JSON) -> list[Statement]:
    # A second LinkCreated for a URL that is already live is ignored, the same
    # way on every replica, so the log may hold it without creating a twin.
    return [
        (
            "INSERT INTO links (id, url, domain, source, created_at) "
            "SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS "
            "(SELECT 1 FROM links WHERE id = ? OR (url = ? AND deleted_at IS NULL))",
            (a["id"], a["url"], a["domain"], a.get("source"), a["createdAt"], a["id"], a["url"]),
        )
    ]


def _link_deleted(a: JSON) -> list[Statement]:
    return [("UPDATE links SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL", (a["deletedAt"], a["id"]))]


def _link_restored(a: JSON) -> list[Statement]:
    # Restoring is refused while another live link holds the same URL.
    return [
        (
            "UPDATE links SET deleted_at = NULL WHERE id = ? AND NOT EXISTS "
            "(SELECT 1 FROM links AS other WHERE other.url = links.url "
            "AND other.deleted_at IS NULL AND other.id != links.id)",
            (a["id"],),
        )
    ]


def _link_completed(a: JSON) -> list[Statement]:
    return [
        (
            "UPDATE links SET status = 'completed', completed_at = ? WHERE id = ?",
            (a["completedAt"], a["id"]),
        )
    ]


def _link_uncompleted(a: JSON) -> list[Statement]:
    return [("UPDATE links SET status = 'unread', completed_at = NULL WHERE id = ?", (a["id"],))]


_TERMINAL_STATUSES: Final = frozenset({"completed", "failed", "cancelled"})


def _set_status(status: str, *, attempts: int | None = None, error: bool = False) -> Materializer:
    """A status change; ``attempts`` sets the count, ``None`` keeps it."""

    def materialize(a: JSON) -> list[Statement]:
        keep = attempts is None
        # A request to reprocess outlives the end of the run it interrupted:
        # the terminal event closes the old run, the request stays pending.
        status_sql = (
            "CASE WHEN status = 'reprocess_requested' THEN status ELSE excluded.status END"
            if status in _TERMINAL_STATUSES
            else "excluded.status"
        )
        return [
            (
                "INSERT INTO link_processing_status (link_id, status, error, attempts, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (link_id) DO UPDATE SET "
                f"status = {status_sql}, error = excluded.error, "
                f"attempts = {'attempts' if keep else 'excluded.attempts'}, "
                "updated_at = excluded.updated_at",
                (
                    a["linkId"],
                    status,
                    a.get("error") if error else None,
                    0 if keep else attempts,
                    a.get("updatedAt") or a.get("requestedAt"),
                ),
            )
        ]

    return materialize


def _processing_resumed(a: JSON) -> list[Statement]:
    return [
        (
            "INSERT INTO link_processing_status (link_id, status, error, attempts, updated_at) "
            "VALUES (?, 'pending', NULL, ?, ?) ON CONFLICT (link_id) DO UPDATE SET "
            "status = 'pending', error = NULL, attempts = excluded.attempts, "
            "updated_at = excluded.updated_at",
            (a["linkId"], a["attempt"], a["updatedAt"]),
        )
    ]


def _metadata_fetched(a: JSON) -> list[Statement]:
    return [
        (
            "INSERT OR IGNORE INTO link_snapshots (id, link_id, title, description, image, favicon, "
            "site_name, canonical_url, fetched_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                a["id"],
                a["linkId"],
                a.get("title"),
                a.get("description"),
                a.get("image"),
                a.get("favicon"),
                a.get("siteName"),
                a.get("canonicalUrl"),
                a["fetchedAt"],
            ),
        )
    ]


def _summarized(a: JSON) -> list[Statement]:
    return [
        (
            "INSERT OR IGNORE INTO link_summaries (id, link_id, summary, model, summarized_at) VALUES (?, ?, ?, ?, ?)",
            (a["id"], a["linkId"], a["summary"], a["model"], a["summarizedAt"]),
        )
    ]


def _tag_created(a: JSON) -> list[Statement]:
    return [
        (
            "INSERT OR IGNORE INTO tags (id, name, created_at) VALUES (?, ?, ?)",
            (a["id"], a["name"], a["createdAt"]),
        )
    ]


def _tag_deleted(a: JSON) -> list[Statement]:
    return [
        ("UPDATE tags SET deleted_at = ? WHERE id = ?", (a["deletedAt"], a["id"])),
        ("DELETE FROM link_tags WHERE tag_id = ?", (a["id"],)),
    ]


def _link_tagged(a: JSON) -> list[Statement]:
    return [
        (
            "INSERT OR IGNORE INTO link_tags (link_id, tag_id, tagged_at) VALUES (?, ?, ?)",
            (a["linkId"], a["tagId"], a.get("taggedAt")),
        )
    ]


def _link_untagged(a: JSON) -> list[Statement]:
    return [("DELETE FROM link_tags WHERE link_id = ? AND tag_id = ?", (a["linkId"], a["tagId"]))]


def _tag_suggested(a: JSON) -> list[Statement]:
    return [
        (
            "INSERT OR IGNORE INTO tag_suggestions (id, link_id, tag_id, name, suggested_at) VALUES (?, ?, ?, ?, ?)",
            (a["id"], a["linkId"], a.get("tagId"), a["name"], a["suggestedAt"]),
        )
    ]


MATERIALIZERS: Final[dict[str, Materializer]] = {
    ev.LinkCreated.NAME: _link_created,
    ev.LinkDeleted.NAME: _link_deleted,
    ev.LinkRestored.NAME: _link_restored,
    ev.LinkCompleted.NAME: _link_completed,
    ev.LinkUncompleted.NAME: _link_uncompleted,
    # A processing request starts at attempt 1; reprocessing resets the count.
    ev.LinkProcessingStarted.NAME: _set_status("pending", attempts=1),
    ev.LinkProcessingResumed.NAME: _processing_resumed,
    ev.LinkMetadataFetched.NAME: _metadata_fetched,
    ev.LinkSummarized.NAME: _summarized,
    ev.LinkProcessingCompleted.NAME: _set_status("completed"),
    ev.LinkProcessingFailed.NAME: _set_status("failed", error=True),
    ev.LinkProcessingCancelled.NAME: _set_status("cancelled"),
    ev.LinkReprocessRequested.NAME: _set_status("reprocess_requested", attempts=0),
    ev.TagCreated.NAME: _tag_created,
    ev.TagDeleted.NAME: _tag_deleted,
    ev.LinkTagged.NAME: _link_tagged,
    ev.LinkUntagged.NAME: _link_untagged,
    ev.TagSuggested.NAME: _tag_suggested,
}


def statements_for(event: Event) -> list[Statement]:
    """The SQL that applies one event to the read tables (nothing for unknown names)."""
    materializer = MATERIALIZERS.get(event.name)
    return materializer(event.args) if materializer else []
