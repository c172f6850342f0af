"""The watch view: links as rows, and a status line that shouts when commits are stuck."""

from __future__ import annotations

from rich.console import Console

from linkproc_ray.cli.watch import render
from linkproc_ray.client import Link, Processing, SyncState, SyncStatus
from linkproc_ray.client import LinkSummary as Summary


def as_text(renderable) -> str:
    console = Console(width=200, record=True)
    console.print(renderable)
    return console.export_text()


LINK = Link(
    id="abcdef123456",
    url="https://example.com/a",
    domain="example.com",
    status="unread",
    source=None,
    created_at="2026-01-01T00:00:00Z",
    completed_at=None,
    deleted_at=None,
    processing=Processing("completed", None, 1, "2026-01-01T00:00:04Z"),
    metadata=None,
    summary=Summary("It says things.", "extractive", "2026-01-01T00:00:03Z"),
)


def test_each_link_is_a_row_with_its_processing_and_summary():
    text = as_text(render([LINK], SyncStatus(SyncState.LIVE, 5, 0, None, None, False)))
    assert "abcdef12" in text and "completed" in text and "It says things." in text
    assert "live · head 5 · 0 pending" in text


def test_pending_commits_not_draining_are_called_out_with_the_last_error():
    status = SyncStatus(SyncState.RETRYING, 5, 2, 45.0, "ConnectionRefusedError", True)
    text = as_text(render([LINK], status))
    assert "PENDING NOT DRAINING" in text and "ConnectionRefusedError" in text
