"""``linkproc import FILE`` and ``linkproc export``: bring your bookmarks, and take them with you.

Both run on the SDK's server commands. An import reports every entry: the
counts at the end, every invalid entry with its reason, and with ``--json``
each entry's outcome, so nothing is saved, or left out, unreported.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from linkproc_ray.cli.options import JsonOutput, ServerURL, Token, fail
from linkproc_ray.client import LinkprocClient
from linkproc_ray.client.models import ImportOutcome
from linkproc_ray.core.bookmarks import BookmarkFile, read_bookmarks
from linkproc_ray.errors import LinkprocError

console = Console(stderr=True)

SHOWN_INVALID = 20
"""Invalid entries listed by name in the human summary; ``--json`` lists them all."""

OUTCOMES = ("created", "exists", "duplicate", "invalid")


def _read(path: Path) -> BookmarkFile:
    data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    return read_bookmarks(data)


async def _import(server: str, token: str, found: BookmarkFile, quiet: bool) -> list[ImportOutcome]:
    async with LinkprocClient(server, token) as client:
        with Progress(
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=quiet,
        ) as progress:
            task = progress.add_task("import", total=len(found.entries))
            return await client.import_links(found.entries, on_batch=lambda batch: progress.advance(task, len(batch)))


def add_bookmark_commands(app: typer.Typer) -> None:
    """Register ``import`` and ``export`` on the ``linkproc`` app."""

    @app.command("import")
    def import_file(
        path: Annotated[
            Path, typer.Argument(help="A Netscape bookmark HTML file, a JSON export, a list of URLs, or -.")
        ],
        server: ServerURL = "http://127.0.0.1:8000",
        token_value: Token = "",
        as_json: JsonOutput = False,
    ) -> None:
        """Import bookmarks (browser, Pocket, Raindrop, Karakeep, Linkwarden exports): folders become tags.

        Example: linkproc import ~/bookmarks.html
        """
        try:
            found = _read(path)
        except OSError as exc:
            raise typer.Exit(fail(f"cannot read {path}: {exc}")) from None
        if not found.entries:
            raise typer.Exit(fail(f"no bookmarks in {path} (read as {found.format}, {found.encoding})"))
        try:
            outcomes = asyncio.run(_import(server, token_value, found, quiet=as_json))
        except LinkprocError as exc:
            raise typer.Exit(fail(f"import stopped: {exc}")) from None
        counts = Counter(o.outcome for o in outcomes)
        summary = {name: counts.get(name, 0) for name in OUTCOMES}
        if as_json:
            document = {
                "file": {"format": found.format, "encoding": found.encoding, "entries": len(found.entries)},
                "counts": summary,
                "outcomes": [asdict(o) for o in outcomes],
            }
            typer.echo(json.dumps(document, ensure_ascii=False))
            return
        invalid = [o for o in outcomes if o.outcome == "invalid"]
        for outcome in invalid[:SHOWN_INVALID]:
            console.print(f"[yellow]entry {outcome.position}[/] {outcome.url[:80]!r}: {outcome.reason}", soft_wrap=True)
        if len(invalid) > SHOWN_INVALID:
            console.print(
                f"… and {len(invalid) - SHOWN_INVALID} more invalid entries (--json lists every entry)", soft_wrap=True
            )
        typer.echo(
            f"{len(found.entries)} entries ({found.format}, {found.encoding}): "
            + ", ".join(f"{summary[name]} {name}" for name in OUTCOMES)
        )

    @app.command("export")
    def export(
        format: Annotated[Literal["json", "html"], typer.Option(help="json (everything) or html (Netscape).")] = "json",
        output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
        server: ServerURL = "http://127.0.0.1:8000",
        token_value: Token = "",
    ) -> None:
        """Export the org's links with metadata, summaries, tags and status, as JSON or Netscape HTML.

        Example: linkproc export --format html -o bookmarks.html
        """

        async def run() -> str:
            async with LinkprocClient(server, token_value) as client:
                return await client.export(format)

        try:
            text = asyncio.run(run())
        except LinkprocError as exc:
            raise typer.Exit(fail(f"export failed: {exc}")) from None
        if output is None:
            typer.echo(text, nl=False)
        else:
            output.write_text(text, "utf-8")
            console.print(f"wrote {output}")
