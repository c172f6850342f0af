"""``linkproc backup DIR`` and ``linkproc restore DIR``: consistent copies of every org's log (README "Backups")."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from linkproc_ray.config import load_settings
from linkproc_ray.core import backup as backups
from linkproc_ray.errors import LinkprocError

console = Console()

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="The data dir (default LINKPROC_DATA_DIR); on a cluster, where it is mounted."),
]


def _data_dir(option: Path | None) -> Path:
    return option.expanduser().resolve() if option is not None else load_settings().data_dir


def _report(title: str, copies: list[backups.OrgCopy]) -> None:
    table = Table("org", "head", "bytes", title=title)
    for copy in copies:
        table.add_row(copy.org, str(copy.head), str(copy.bytes))
    console.print(table)


def add_backup_commands(app: typer.Typer) -> None:
    """Register ``backup`` and ``restore`` on the ``linkproc`` app."""

    @app.command()
    def backup(
        directory: Annotated[Path, typer.Argument(help="A new or empty folder for the backup.")],
        data_dir: DataDir = None,
    ) -> None:
        """Copy every org's log while the system runs (SQLite's online backup API), checked, with a manifest.

        Example: linkproc backup /backups/linkproc-$(date +%F)
        """
        try:
            copies = backups.backup(_data_dir(data_dir), directory)
        except LinkprocError as exc:
            console.print(f"[red]backup failed: {exc}[/]")
            raise typer.Exit(code=1) from None
        _report(f"backed up {len(copies)} org(s) into {directory}", copies)

    @app.command()
    def restore(
        directory: Annotated[Path, typer.Argument(help="A folder written by `linkproc backup`.")],
        org: Annotated[list[str] | None, typer.Option(help="Restore only this org (repeatable).")] = None,
        data_dir: DataDir = None,
    ) -> None:
        """Put a backup's logs back; the orgs must be stopped. Their processors rebuild from the restored log.

        Example: linkproc restore /backups/linkproc-2026-12-01 --org acme
        """
        try:
            copies = backups.restore(directory, _data_dir(data_dir), orgs=org or None)
        except LinkprocError as exc:
            console.print(f"[red]restore refused: {exc}[/]")
            raise typer.Exit(code=1) from None
        _report(f"restored {len(copies)} org(s) from {directory}", copies)
