"""``linkproc watch``: an org's links as a live table, fed by the SDK's live sync until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from linkproc_ray.client import Link, LinkprocClient, SyncStatus

MAX_ROWS = 40


def render(links: list[Link], status: SyncStatus) -> Group:
    """The table of links (newest first) under one status line that says if sync is stuck."""
    table = Table("id", "status", "processing", "title", "summary", "url", expand=True)
    for link in links[:MAX_ROWS]:
        processing = link.processing.status or "queued"
        if link.processing.error:
            processing += f" ({link.processing.error})"
        title = (link.metadata.title if link.metadata else None) or ""
        summary = link.summary.text if link.summary else ""
        table.add_row(link.id[:8], link.status, processing, title[:50], summary[:80], link.url[:60])
    line = f"{status.state.value} · head {status.head} · {status.pending} pending"
    style = "green"
    if status.pending_not_draining:
        line += " · PENDING NOT DRAINING"
        style = "bold red"
    if status.last_error and status.state.value != "live":
        line += f" · {status.last_error}"
        style = "yellow" if style == "green" else style
    return Group(Text(line, style=style), table)


async def _watch(server: str, token: str) -> None:
    async with LinkprocClient(server, token) as client:
        client.start()
        with Live(render([], client.status), refresh_per_second=4) as live:
            while True:
                # Redraw on every change, and at least each second so the status line stays current.
                await client.wait_for_change(timeout=1.0)
                live.update(render(await client.links(limit=MAX_ROWS), client.status))


def watch(server: str, token: str) -> None:
    """Show the token's org's links changing live until Ctrl-C (an in-memory replica, nothing written)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_watch(server, token))
