"""Deterministic projections of the ordered log into the read tables.

Each materializer is a pure function of one event that returns SQL statements;
they read no clock, no randomness and nothing but the event and the tables.
The same log therefore gives byte-identical tables on the backend, the
processor and every client.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final
from urllib.parse import unquote

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
CREATE VIRTUAL TABLE IF NOT EXISTS links_fts USING fts5(
    title, description, summary, tags, site_name, url,
    tokenize = 'unicode61 remove_diacritics 2'
);
"""
"""The read tables; every replica creates exactly these.

``links_fts`` is the full-text index of live links, one row per link with the
link's ``rowid``: accents fold (``café`` matches ``cafe``), URLs split into
their words, and CJK text is indexed one character a token
(:func:`search_text`), so a word of any length is found as a phrase.
"""

TABLES: Final = (
    "links",
    "link_processing_status",
    "link_snapshots",
    "link_summaries",
    "tags",
    "link_tags",
    "tag_suggestions",
    "links_fts",
)

_CJK: Final = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff])")
"""Kana, CJK ideographs and Hangul: scripts written without spaces between words."""


def search_text(text: str | None) -> str | None:
    """Text as the index stores it: each CJK character set apart by spaces, so it is a token of its own.

    The SQL function ``search_text`` of every store (registered as deterministic):
    the materializers call it, so the index is a pure function of the log.
    """
    return None if text is None else _CJK.sub(r" \1 ", text)


def search_url(url: str | None) -> str | None:
    """A URL as the index stores it: percent-escapes decoded, so ``caf%C3%A9`` is the word ``café``.

    The SQL function ``search_url`` of every store, deterministic like :func:`search_text`.
    """
    return None if url is None else search_text(unquote(url))


def is_cjk(char: str) -> bool:
    """Whether ``char`` is one :func:`search_text` sets apart."""
    return _CJK.fullmatch(char) is not None


_INDEXED: Final = """
INSERT INTO links_fts (rowid, title, description, summary, tags, site_name, url)
SELECT l.rowid, search_text(s.title), search_text(s.description), search_text(m.summary),
       search_text((SELECT group_concat(name, ' ') FROM
           (SELECT t.name FROM link_tags AS lt JOIN tags AS t ON t.id = lt.tag_id
            WHERE lt.link_id = l.id AND t.deleted_at IS NULL ORDER BY t.rowid))),
       search_text(s.site_name), search_url(l.url)
FROM links AS l
LEFT JOIN link_snapshots AS s ON s.rowid = (SELECT MAX(rowid) FROM link_snapshots WHERE link_id = l.id)
LEFT JOIN link_summaries AS m ON m.rowid = (SELECT MAX(rowid) FROM link_summaries WHERE link_id = l.id)
WHERE l.deleted_at IS NULL AND """

REINDEX_ALL: Final[list[Statement]] = [("DELETE FROM links_fts", ()), (_INDEXED + "1", ())]
"""Index every live link from the tables: a store made before the index existed builds it once at open."""


def _reindex(link_id: str) -> list[Statement]:
    """One link's index row rebuilt from the tables (none if the link is deleted or absent)."""
    return [
        ("DELETE FROM links_fts WHERE rowid = (SELECT rowid FROM links WHERE id = ?)", (link_id,)),
        (_INDEXED + "l.id = ?", (link_id,)),
    ]


def _reindexing(materializer: Materializer, key: str) -> Materializer:
    """``materializer``, then the index row of the link named by the args' ``key``."""

    def materialize(a: JSON) -> list[Statement]:
        return [*materializer(a), *_reindex(a[key])]

    return materialize


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
    tagged = "(SELECT link_id FROM link_tags WHERE tag_id = ?)"
    return [
        ("UPDATE tags SET deleted_at = ? WHERE id = ?", (a["deletedAt"], a["id"])),
        # The links that had the tag are indexed again without it (it is deleted now), then untagged.
        (f"DELETE FROM links_fts WHERE rowid IN (SELECT rowid FROM links WHERE id IN {tagged})", (a["id"],)),
        (_INDEXED + f"l.id IN {tagged}", (a["id"],)),
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


def _suggestion_dismissed(a: JSON) -> list[Statement]:
    return [("DELETE FROM tag_suggestions WHERE link_id = ? AND name = ?", (a["linkId"], a["name"]))]


def _tag_suggested(a: JSON) -> list[Statement]:
    return [
        (
            "INSERT OR IGNORE INTO tag_suggestions (id, link_id, tag_id, name, suggested_at) VALUES (?, ?, ?, ?, ?)",
            (a["id"], a["linkId"], a.get("tagId"), a["name"], a["suggestedAt"]),
        )
    ]


MATERIALIZERS: Final[dict[str, Materializer]] = {
    ev.LinkCreated.NAME: _reindexing(_link_created, "id"),
    ev.LinkDeleted.NAME: _reindexing(_link_deleted, "id"),
    ev.LinkRestored.NAME: _reindexing(_link_restored, "id"),
    ev.LinkCompleted.NAME: _link_completed,
    ev.LinkUncompleted.NAME: _link_uncompleted,
    # A processing request starts at attempt 1; reprocessing resets the count.
    ev.LinkProcessingStarted.NAME: _set_status("pending", attempts=1),
    ev.LinkProcessingResumed.NAME: _processing_resumed,
    ev.LinkMetadataFetched.NAME: _reindexing(_metadata_fetched, "linkId"),
    ev.LinkSummarized.NAME: _reindexing(_summarized, "linkId"),
    ev.LinkProcessingCompleted.NAME: _set_status("completed"),
    ev.LinkProcessingFailed.NAME: _set_status("failed", error=True),
    ev.LinkProcessingCancelled.NAME: _set_status("cancelled"),
    ev.LinkReprocessRequested.NAME: _set_status("reprocess_requested", attempts=0),
    ev.TagCreated.NAME: _tag_created,
    ev.TagDeleted.NAME: _tag_deleted,
    ev.LinkTagged.NAME: _reindexing(_link_tagged, "linkId"),
    ev.LinkUntagged.NAME: _reindexing(_link_untagged, "linkId"),
    ev.TagSuggested.NAME: _tag_suggested,
    ev.TagSuggestionDismissed.NAME: _suggestion_dismissed,
}


def statements_for(event: Event) -> list[Statement]:
    """The SQL that applies one event to the read tables (nothing for unknown names)."""
    materializer = MATERIALIZERS.get(event.name)
    return materializer(event.args) if materializer else []
