"""The ``linkproc`` command: run the system locally and mint dev tokens; the other commands live beside it."""

from __future__ import annotations

import signal
import threading
import time
from typing import Annotated

import typer
from rich.console import Console

from linkproc_ray.api.auth import issue_token, require_org_id
from linkproc_ray.cli.backup import add_backup_commands
from linkproc_ray.cli.bookmarks import add_bookmark_commands
from linkproc_ray.cli.links import add_link_commands
from linkproc_ray.cli.options import ServerURL, Token
from linkproc_ray.config import load_settings
from linkproc_ray.errors import ConfigError, InvalidOrgId

app = typer.Typer(help="linkproc-ray: event-sourced link enrichment on Ray.", no_args_is_help=True)
console = Console()


def page_url(host: str, port: int, token_value: str) -> str:
    """The web page's address with the token in its fragment: it opens signed in, and no request or log carries it."""
    reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in reachable:
        reachable = f"[{reachable}]"
    return f"http://{reachable}:{port}/#token={token_value}"


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Interface the HTTP ingress binds.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the HTTP ingress.")] = 8000,
    org: Annotated[str, typer.Option(help="Org of the printed dev token.")] = "acme",
    num_cpus: Annotated[int | None, typer.Option(help="CPUs for the local Ray cluster (default: all).")] = None,
    metrics_port: Annotated[int, typer.Option(help="Port of Ray's Prometheus metrics (processors, backends).")] = 8080,
) -> None:
    """Start a local Ray cluster and the Serve app in the foreground; Ctrl-C stops everything.

    Example: LINKPROC_FETCH_ALLOW_HOSTS=127.0.0.1 linkproc up --port 8000
    """
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    from linkproc_ray.adapters.local import start_local, stop_local

    started = time.monotonic()
    with console.status("starting Ray and Serve…"):
        start_local(settings, host=host, port=port, num_cpus=num_cpus, metrics_port=metrics_port)
    console.print(f"[green]linkproc-ray is up[/] at http://{host}:{port} in {time.monotonic() - started:.1f} s")
    console.print(f"data dir: {settings.data_dir}")
    console.print(
        f"metrics: http://{host}:{port}/metrics (ingress), http://127.0.0.1:{metrics_port}/metrics (Ray: orgs)"
    )
    dev_token = issue_token(settings, org, ttl=3600)
    console.print(f"dev token for org {org!r} (1 h):")
    print(dev_token, flush=True)
    console.print("the web page, signed in (the token rides in the fragment, which the browser never sends):")
    print(page_url(host, port, dev_token), flush=True)
    console.print("Ctrl-C stops it.")

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    with console.status("shutting down…"):
        stop_local()
    console.print("stopped.")


@app.command()
def token(
    org: Annotated[str, typer.Option(help="Organization id (the token's orgId).")],
    sub: Annotated[str, typer.Option(help="User id (the token's sub).")] = "dev",
    ttl: Annotated[int, typer.Option(help="Seconds until the token expires.")] = 3600,
) -> None:
    """Print a token signed with the configured secret.

    Example: export LINKPROC_TOKEN=$(linkproc token --org acme)
    """
    try:
        require_org_id(org)
    except InvalidOrgId as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(issue_token(load_settings(), org, sub=sub, ttl=ttl))


@app.command("watch")
def watch_links(server: ServerURL = "http://127.0.0.1:8000", token_value: Token = "") -> None:
    """Show the org's links changing live until Ctrl-C.

    Example: linkproc watch
    """
    from linkproc_ray.cli.watch import watch

    watch(server, token_value)


add_backup_commands(app)
add_bookmark_commands(app)
add_link_commands(app)


def main() -> None:
    app()
