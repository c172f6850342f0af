"""Read-model queries shared by every replica: links as the API shows them, and pending work."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, Final

from linkproc_ray.core.store import EventStore
from linkproc_ray.core.types import JSON

_LINK_SELECT: Final = """
SELECT l.rowid AS row, l.id, l.url, l.domain, l.status, l.source, l.created_at, l.completed_at,
       l.deleted_at, p.status AS p_status, p.error AS p_error, p.attempts AS p_attempts,
       p.updated_at AS p_updated_at,
       s.title, s.description, s.image, s.favicon, s.site_name, s.canonical_url, s.fetched_at,
       m.summary, m.model, m.summarized_at,
       (SELECT json_group_array(name) FROM
           (SELECT t.name FROM link_tags AS lt JOIN tags AS t ON t.id = lt.tag_id
            WHERE lt.link_id = l.id AND t.deleted_at IS NULL ORDER BY t.rowid)) AS tags_json,
       (SELECT json_group_array(name) FROM
           (SELECT ts.name FROM tag_suggestions AS ts WHERE ts.link_id = l.id AND ts.name NOT IN
               (SELECT t.name FROM link_tags AS lt JOIN tags AS t ON t.id = lt.tag_id
                WHERE lt.link_id = l.id AND t.deleted_at IS NULL)
            GROUP BY ts.name ORDER BY MIN(ts.rowid))) AS suggested_json
FROM links AS l
LEFT JOIN link_processing_status AS p ON p.link_id = l.id
LEFT JOIN link_snapshots AS s ON s.rowid =
    (SELECT MAX(rowid) FROM link_snapshots WHERE link_id = l.id)
LEFT JOIN link_summaries AS m ON m.rowid =
    (SELECT MAX(rowid) FROM link_summaries WHERE link_id = l.id)
"""

PENDING_STATUSES: Final = ("pending", "reprocess_requested")

NOT_STARTED: Final = "none"
"""The ``processing`` filter value for links the processor has not started (status ``null``)."""


def link_json(row: JSON) -> JSON:
    """One row of :data:`_LINK_SELECT` as the API's ``Link`` object."""
    metadata: JSON | None = None
    if row["fetched_at"] is not None:
        metadata = {
            "title": row["title"],
            "description": row["description"],
            "image": row["image"],
            "favicon": row["favicon"],
            "siteName": row["site_name"],
            "canonicalUrl": row["canonical_url"],
            "fetchedAt": row["fetched_at"],
        }
    summary: JSON | None = None
    if row["summary"] is not None:
        summary = {"text": row["summary"], "model": row["model"], "summarizedAt": row["summarized_at"]}
    return {
        "id": row["id"],
        "url": row["url"],
        "domain": row["domain"],
        "status": row["status"],
        "source": row["source"],
        "createdAt": row["created_at"],
        "completedAt": row["completed_at"],
        "deletedAt": row["deleted_at"],
        "processing": {
            "status": row["p_status"],
            "error": row["p_error"],
            "attempts": row["p_attempts"] or 0,
            "updatedAt": row["p_updated_at"],
        },
        "metadata": metadata,
        "summary": summary,
        "tags": json.loads(row["tags_json"]),
        "suggestedTags": json.loads(row["suggested_json"]),
    }


async def get_link(store: EventStore, link_id: str, *, in_transaction: bool = False) -> JSON | None:
    rows = await store.fetchall(_LINK_SELECT + " WHERE l.id = ?", (link_id,), in_transaction=in_transaction)
    return link_json(rows[0]) if rows else None


async def links_by_rowid(store: EventStore, rowids: list[int]) -> dict[int, JSON]:
    """Rows of :data:`_LINK_SELECT` by the links' rowids (as search ranks them), for :func:`link_json`."""
    if not rowids:
        return {}
    marks = ",".join("?" * len(rowids))
    rows = await store.fetchall(_LINK_SELECT + f" WHERE l.rowid IN ({marks})", rowids)
    return {row["row"]: row for row in rows}


async def all_links(store: EventStore) -> list[JSON]:
    """Every live link, oldest first: what an export holds."""
    rows = await store.fetchall(_LINK_SELECT + " WHERE l.deleted_at IS NULL ORDER BY l.rowid")
    return [link_json(row) for row in rows]


async def link_history(store: EventStore, link_id: str) -> list[JSON]:
    """The events about one link, oldest first (needs the log: the backend's store or the SDK's)."""
    rows = await store.fetchall(
        "SELECT seq, parent, id, name, args, client_id, session_id FROM events "
        "WHERE json_extract(args, '$.linkId') = ? OR (json_extract(args, '$.id') = ? AND name LIKE 'v1.Link%') "
        "ORDER BY seq",
        (link_id, link_id),
    )
    return [
        {
            "seq": r["seq"],
            "parent": r["parent"],
            "id": r["id"],
            "name": r["name"],
            "args": json.loads(r["args"]),
            "clientId": r["client_id"],
            "sessionId": r["session_id"],
        }
        for r in rows
    ]


async def live_link_id(store: EventStore, url: str) -> str | None:
    """The id of the live link with this canonical URL, read in the writer's open transaction (an import's check)."""
    rows = await store.fetchall(
        "SELECT id FROM links WHERE url = ? AND deleted_at IS NULL", (url,), in_transaction=True
    )
    return str(rows[0]["id"]) if rows else None


async def find_live_link_by_url(store: EventStore, url: str, *, in_transaction: bool = False) -> JSON | None:
    rows = await store.fetchall(
        _LINK_SELECT + " WHERE l.url = ? AND l.deleted_at IS NULL", (url,), in_transaction=in_transaction
    )
    return link_json(rows[0]) if rows else None


async def list_links(
    store: EventStore,
    *,
    status: str | None = None,
    processing: Collection[str] | None = None,
    include_deleted: bool = False,
    limit: int = 50,
    cursor: int | None = None,
) -> tuple[list[JSON], int | None]:
    """Links newest first; ``cursor`` is the row after which the next page starts.

    ``processing`` keeps links whose processing status is one of these
    (:data:`NOT_STARTED` for links the processor has not started).
    """
    where: list[str] = []
    params: list[Any] = []
    if not include_deleted:
        where.append("l.deleted_at IS NULL")
    if status is not None:
        where.append("l.status = ?")
        params.append(status)
    if processing:
        stored = sorted(set(processing) - {NOT_STARTED})
        either = [f"p.status IN ({', '.join('?' * len(stored))})"] if stored else []
        if NOT_STARTED in processing:
            either.append("p.status IS NULL")
        where.append("(" + " OR ".join(either) + ")")
        params.extend(stored)
    if cursor is not None:
        where.append("l.rowid < ?")
        params.append(cursor)
    sql = _LINK_SELECT + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY l.rowid DESC LIMIT ?"
    params.append(limit + 1)
    rows = await store.fetchall(sql, params)
    next_cursor = rows[limit - 1]["row"] if len(rows) > limit else None
    return [link_json(row) for row in rows[:limit]], next_cursor


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A link that needs the processor: its status decides Started vs Resumed."""

    link_id: str
    url: str
    status: str | None
    attempts: int


def _among(link_ids: Collection[str] | None) -> tuple[str, list[str]]:
    """The SQL condition and parameters that narrow a query to ``link_ids`` (all links when ``None``)."""
    if link_ids is None:
        return "", []
    ids = sorted(link_ids)
    return f" AND l.id IN ({','.join('?' * len(ids))})", ids


async def pending_links(store: EventStore, among: Collection[str] | None = None) -> list[WorkItem]:
    """Live links whose processing status is absent, ``pending`` or ``reprocess_requested`` (of ``among``, if given)."""
    narrow, ids = _among(among)
    rows = await store.fetchall(
        "SELECT l.id, l.url, p.status, COALESCE(p.attempts, 0) AS attempts FROM links AS l "
        "LEFT JOIN link_processing_status AS p ON p.link_id = l.id "
        f"WHERE l.deleted_at IS NULL AND (p.status IS NULL OR p.status IN (?, ?)){narrow} ORDER BY l.rowid",
        [*PENDING_STATUSES, *ids],
    )
    return [WorkItem(r["id"], r["url"], r["status"], r["attempts"]) for r in rows]


async def deleted_while_pending(store: EventStore, among: Collection[str] | None = None) -> list[str]:
    """Deleted links still marked ``pending`` (of ``among``, if given): their request must end with Cancelled."""
    narrow, ids = _among(among)
    rows = await store.fetchall(
        "SELECT l.id FROM links AS l JOIN link_processing_status AS p ON p.link_id = l.id "
        f"WHERE l.deleted_at IS NOT NULL AND p.status = 'pending'{narrow} ORDER BY l.rowid",
        ids,
    )
    return [r["id"] for r in rows]


@dataclass(frozen=True, slots=True)
class LinkState:
    """What a processing decision depends on."""

    deleted: bool
    status: str | None
    attempts: int


async def link_states(store: EventStore, link_ids: Iterable[str]) -> dict[str, LinkState]:
    """The deletion and processing status of each link, in one read; links that do not exist are absent."""
    ids = list(link_ids)
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = await store.fetchall(
        "SELECT l.id, l.deleted_at, p.status, COALESCE(p.attempts, 0) AS attempts FROM links AS l "
        f"LEFT JOIN link_processing_status AS p ON p.link_id = l.id WHERE l.id IN ({marks})",
        ids,
    )
    return {
        row["id"]: LinkState(deleted=row["deleted_at"] is not None, status=row["status"], attempts=row["attempts"])
        for row in rows
    }


async def tag_names(store: EventStore, link_id: str | None = None, *, in_transaction: bool = False) -> list[str]:
    """Live tag names of the org, or of one link."""
    if link_id is None:
        rows = await store.fetchall(
            "SELECT name FROM tags WHERE deleted_at IS NULL ORDER BY rowid", in_transaction=in_transaction
        )
    else:
        rows = await store.fetchall(
            "SELECT t.name FROM link_tags AS lt JOIN tags AS t ON t.id = lt.tag_id "
            "WHERE lt.link_id = ? AND t.deleted_at IS NULL ORDER BY t.rowid",
            (link_id,),
            in_transaction=in_transaction,
        )
    return [r["name"] for r in rows]


async def tag_ids(store: EventStore, *, in_transaction: bool = False) -> dict[str, str]:
    """Live tags of the org by name: suggestions and imports reuse an existing tag's id (the first, if names repeat)."""
    rows = await store.fetchall(
        "SELECT id, name FROM tags WHERE deleted_at IS NULL ORDER BY rowid DESC", in_transaction=in_transaction
    )
    return {row["name"]: row["id"] for row in rows}
