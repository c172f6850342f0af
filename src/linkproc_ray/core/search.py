"""Full-text search over the read model's ``links_fts`` index: ranked links with a highlighted snippet.

The index is built by the materializers, so the backend and every replica
(the SDK's offline one included) answer the same query the same way.
"""

from __future__ import annotations

from typing import Final

from linkproc_ray.core.materialize import is_cjk, search_text
from linkproc_ray.core.queries import link_json, links_by_rowid
from linkproc_ray.core.store import EventStore
from linkproc_ray.core.types import JSON

WEIGHTS: Final = (8.0, 3.0, 3.0, 5.0, 2.0, 1.0)
"""bm25 weights of title, description, summary, tags, site name and URL: a word in the title counts most."""

_OPEN, _CLOSE = "\x02", "\x03"
_SNIPPET_TOKENS: Final = 16
MAX_QUERY_LENGTH: Final = 500


def match_expression(query: str) -> str | None:
    """The FTS5 query for what a person typed: every word must appear; the last may be a prefix.

    Each word becomes a quoted phrase, so no character of the input is an FTS5
    operator; a word the tokenizer splits (``rust-async``, ``東京``) must
    appear as those tokens side by side. ``None`` when nothing searchable is left.
    """
    cleaned = (w.replace('"', " ").strip() for w in query[:MAX_QUERY_LENGTH].split())
    words = [w for w in cleaned if any(c.isalnum() for c in w)]
    if not words:
        return None
    phrases = [f'"{search_text(w)}"' for w in words]
    if not is_cjk(words[-1][-1]):
        phrases[-1] += "*"
    return " ".join(phrases)


def snippet_json(raw: str) -> JSON:
    """A snippet from SQLite as ``{"text", "marks": [[start, end]…]}``, the spaces set around CJK taken out again."""
    text: list[str] = []
    marks: list[list[int]] = []
    visible = [(i, c) for i, c in enumerate(raw) if c not in (_OPEN, _CLOSE)]
    neighbours = {
        i: (visible[k - 1][1] if k else "", visible[k + 1][1] if k + 1 < len(visible) else "")
        for k, (i, _) in enumerate(visible)
    }
    for i, char in enumerate(raw):
        if char == _OPEN:
            marks.append([len(text), len(text)])
        elif char == _CLOSE:
            if marks:
                marks[-1][1] = len(text)
        elif char == " " and any(n and is_cjk(n) for n in neighbours[i]):
            continue
        else:
            text.append(char)
    joined = "".join(text)
    # A mark spans the token's text only: spaces at its ends belong to the text around it.
    for mark in marks:
        while mark[0] < mark[1] and joined[mark[0]] == " ":
            mark[0] += 1
        while mark[1] > mark[0] and joined[mark[1] - 1] == " ":
            mark[1] -= 1
    merged: list[list[int]] = []
    for mark in (m for m in marks if m[0] < m[1]):
        if merged and merged[-1][1] == mark[0]:
            merged[-1][1] = mark[1]  # CJK characters matched side by side are one highlight
        else:
            merged.append(mark)
    return {"text": joined, "marks": merged}


async def search_links(store: EventStore, query: str, *, limit: int = 20, offset: int = 0) -> list[JSON]:
    """Live links matching ``query``, best first: each a ``Link`` with ``search: {rank, snippet}``."""
    expression = match_expression(query)
    if expression is None:
        return []
    weights = ", ".join(str(w) for w in WEIGHTS)
    rows = await store.fetchall(
        f"SELECT rowid AS row, bm25(links_fts, {weights}) AS rank, "
        f"snippet(links_fts, -1, char(2), char(3), '…', {_SNIPPET_TOKENS}) AS snippet "
        "FROM links_fts WHERE links_fts MATCH ? ORDER BY rank, rowid DESC LIMIT ? OFFSET ?",
        (expression, limit, offset),
    )
    links = await links_by_rowid(store, [row["row"] for row in rows])
    return [
        {**link_json(links[row["row"]]), "search": {"rank": row["rank"], "snippet": snippet_json(row["snippet"])}}
        for row in rows
        if row["row"] in links
    ]
