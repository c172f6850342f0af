"""Options every command that talks to the server shares, and how a command fails."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

ServerURL = Annotated[str, typer.Option("--server", envvar="LINKPROC_URL", help="Base URL of the ingress.")]
Token = Annotated[
    str, typer.Option("--token", envvar="LINKPROC_TOKEN", help="A JWT for the org (see `linkproc token`).")
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text.")]

_errors = Console(stderr=True)


def fail(message: str) -> int:
    """Say what went wrong on stderr; returns the exit code to leave with."""
    _errors.print(f"[red]{message}[/]")
    return 1
