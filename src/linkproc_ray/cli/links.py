"""The commands about links: ``add``, ``ls``, ``show``, ``rm``, ``reprocess``, ``search``, ``tag``, ``untag``, ``open``.

Each runs one of the SDK's server commands; ``--json`` prints the server's
answer as it is, for scripts.
"""

from __future__ import annotations

import asyncio
import json
import re
import webbrowser
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final

import typer
from rich.console import Console
from rich.table import Table

from linkproc_ray.cli.options import JsonOutput, ServerURL, Token, fail
from linkproc_ray.client import LinkprocClient
from linkproc_ray.core.types import JSON
from linkproc_ray.errors import LinkprocError

console = Console()

FAILURE_WORDS: Final = {
    "fetch:timeout": "the page took too long to answer",
    "fetch:dns": "the site's name could not be found",
    "fetch:blocked": "the address is not allowed (a private or local network address)",
    "fetch:connect": "the site could not be reached",
    "fetch:too_many_redirects": "the page redirected too many times",
    "fetch:too_large": "the page is too large to read",
    "fetch:unsupported_type": "the link is not a web page (it is not HTML)",
    "fetch:error": "the page could not be fetched",
    "parse:timeout": "reading the page took too long",
    "parse:error": "the page could not be read",
    "ai:timeout": "the summarizer took too long to answer",
    "ai:error": "the summarizer failed",
    "ai:invalid_output": "no valid summary could be written (the page may have too little text)",
    "interrupted": "processing was interrupted too many times",
    "internal": "an internal error stopped processing",
}
"""The failure codes of ``v1.LinkProcessingFailed`` in words (the web page's ``failures.js`` says the same)."""

_STATUS_WORDS: Final = {
    401: "the page needs a sign-in",
    403: "the site refused access",
    404: "the page was not found",
    410: "the page is gone",
    429: "the site asked us to slow down",
}

LinkArg = Annotated[str, typer.Argument(help="The link's id (as `linkproc ls` or `search` print it).")]
TagArg = Annotated[str, typer.Argument(help="The tag's name.")]


def failure_in_words(code: str | None) -> str:
    """A failure code as a reader understands it, e.g. ``fetch:404`` is "the page was not found (HTTP 404)"."""
    if not code:
        return "processing failed"
    if code in FAILURE_WORDS:
        return FAILURE_WORDS[code]
    status = re.fullmatch(r"fetch:(\d{3})", code)
    if status is None:
        return "processing failed"
    number = int(status.group(1))
    words = _STATUS_WORDS.get(number, "the site had an error" if number >= 500 else "the site answered with an error")
    return f"{words} (HTTP {number})"


def _run(server: str, token: str, command: Callable[[LinkprocClient], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        async with LinkprocClient(server, token) as client:
            return await command(client)

    try:
        return asyncio.run(run())
    except LinkprocError as exc:
        raise typer.Exit(fail(str(exc))) from None


def _print_link(link: JSON, history: list[JSON]) -> None:
    meta = link["metadata"] or {}
    processing = link["processing"]
    console.print(f"[bold]{meta.get('title') or link['url']}[/]")
    console.print(f"{link['url']}  ·  id {link['id']}  ·  {link['status']}  ·  saved {link['createdAt']}")
    if link["deletedAt"]:
        console.print(f"[red]deleted {link['deletedAt']}[/]")
    state = processing["status"] or "queued"
    if processing["error"]:
        state += f": {failure_in_words(processing['error'])} ({processing['error']})"
    console.print(f"processing: {state}, attempt {processing['attempts']}")
    if meta.get("description"):
        console.print(f"description: {meta['description']}")
    if link["summary"]:
        console.print(f"summary ({link['summary']['model']}): {link['summary']['text']}")
    console.print(f"tags: {', '.join(link['tags']) or '—'}   suggested: {', '.join(link['suggestedTags']) or '—'}")
    table = Table("seq", "event", "when", "detail", title="processing history")
    for event in history:
        args = event["args"]
        detail = ""
        if "error" in args:
            detail = f"{failure_in_words(args['error'])} ({args['error']})"
        elif "attempt" in args:
            detail = f"attempt {args['attempt']}"
        when = args.get("updatedAt") or args.get("requestedAt") or ""
        table.add_row(str(event["seq"]), event["name"].removeprefix("v1."), when, detail)
    console.print(table)


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False))


def add_link_commands(app: typer.Typer) -> None:
    """Register the link commands on the ``linkproc`` app."""

    @app.command()
    def add(
        url: Annotated[str, typer.Argument(help="An absolute http(s) URL.")],
        server: ServerURL = "http://127.0.0.1:8000",
        token_value: Token = "",
        as_json: JsonOutput = False,
    ) -> None:
        """Save a link for the token's org (the same URL saved again is the same link).

        Example: linkproc add https://example.com/article
        """
        link = _run(server, token_value, lambda client: client.save_link(url))
        if as_json:
            _echo_json(link)
        else:
            typer.echo(f"{link['id']}  {link['url']}")

    @app.command("ls")
    def list_links(
        limit: Annotated[int, typer.Option(help="How many links, newest first (at most 200).")] = 50,
        server: ServerURL = "http://127.0.0.1:8000",
        token_value: Token = "",
        as_json: JsonOutput = False,
    ) -> None:
        """List the org's links with their processing status and title.

        Example: linkproc ls --limit 20
        """
        links = _run(server, token_value, lambda client: client.list_remote(limit=limit))
        if as_json:
            _echo_json(links)
            return
        table = Table("id", "status", "processing", "title", "url")
        for link in links:
            processing = link["processing"]["status"] or "queued"
            if link["processing"]["error"]:
                processing += f" ({failure_in_words(link['processing']['error'])})"
            title = (link["metadata"] or {}).get("title") or ""
            table.add_row(link["id"][:8], link["status"], processing, title[:60], link["url"][:60])
        console.print(table)

    @app.command()
    def show(
        link_id: LinkArg,
        server: ServerURL = "http://127.0.0.1:8000",
        token_value: Token = "",
        as_json: JsonOutput = False,
    ) -> None:
        """Show a link: metadata, summary, tags, and its processing history with failures in words.

        Example: linkproc show 3f2a…
        """

        async def command(client: LinkprocClient) -> tuple[JSON, list[JSON]]:
            return await client.fetch_link(link_id), await client.link_history(link_id)

        link, history = _run(server, token_value, command)
        if as_json:
            _echo_json({**link, "history": history})
        else:
            _print_link(link, history)

    @app.command("rm")
    def remove(
        link_id: LinkArg,
        server: ServerURL = "http://127.0.0.1:8000",
        token_value: Token = "",
        as_json: JsonOutput = False,
    ) -> None:
        """Delete a link.

        Example: linkproc rm 3f2a…
        """
        link = _run(server, token_value, lambda client: client.remove_link(link_id))
        if as_json:
            _echo_json(link)
        else:
            typer.echo(f"deleted {link['id']}  {link['url']}")

    @app.command()
    def reprocess(
        link_id: LinkArg,
        server: ServerURL = "http://127.0.0.1:8000",
        token_value: Token = "",
        as_json: JsonOutput = False,
    ) -> None:
        """Fetch and summarize a link again.

        Example: linkproc reprocess 3f2a…
        """
        link = _run(server, token_value, lambda client: client.reprocess_link(link_id))
        if as_json:
            _echo_json(link)
        else:
            typer.echo(f"reprocessing {link['id']}  {link['url']}")

    @app.command()
    def search(
        query: Annotated[
            str, typer.Argument(help="Words to find in titles, descriptions, summaries, tags, sites, URLs.")
        ],
        limit: Annotated[int, typer.Option(help="How many results, best first.")] = 20,
        server: ServerURL = "http://127.0.0.1:8000",
        token_value: Token = "",
        as_json: JsonOutput = False,
    ) -> None:
        """Full-text search over the org's links, best match first, with the matching words highlighted.

        Example: linkproc search "rust async"
        """
        links = _run(server, token_value, lambda client: client.find(query, limit=limit))
        if as_json:
            _echo_json(links)
            return
        table = Table("id", "title", "match", "url")
        for link in links:
            snippet = link["search"]["snippet"]
            text = snippet["text"]
            marked = ""
            last = 0
            for start, end in snippet["marks"]:
                marked += text[last:start].replace("[", r"\[") + "[bold yellow]" + text[start:end] + "[/]"
                last = end
            marked += text[last:].replace("[", r"\[")
            title = (link["metadata"] or {}).get("title") or ""
            table.add_row(link["id"][:8], title[:50], marked, link["url"][:60])
        console.print(table)
        if not links:
            console.print("no links match")

    @app.command()
    def tag(
        link_id: LinkArg,
        name: TagArg,
        server: ServerURL = "http://127.0.0.1:8000",
        token_value: Token = "",
        as_json: JsonOutput = False,
    ) -> None:
        """Tag a link (this also accepts a suggested tag).

        Example: linkproc tag 3f2a… rust
        """
        link = _run(server, token_value, lambda client: client.tag_link(link_id, name))
        if as_json:
            _echo_json(link)
        else:
            typer.echo(f"{link['id']}  tags: {', '.join(link['tags'])}")

    @app.command()
    def untag(
        link_id: LinkArg,
        name: TagArg,
        dismiss: Annotated[bool, typer.Option(help="Dismiss it as a suggestion instead.")] = False,
        server: ServerURL = "http://127.0.0.1:8000",
        token_value: Token = "",
        as_json: JsonOutput = False,
    ) -> None:
        """Remove a tag from a link, or with --dismiss a tag the summarizer suggested.

        Example: linkproc untag 3f2a… rust
        """
        if dismiss:
            link = _run(server, token_value, lambda client: client.dismiss_suggestion(link_id, name))
        else:
            link = _run(server, token_value, lambda client: client.untag_link(link_id, name))
        if as_json:
            _echo_json(link)
        else:
            typer.echo(f"{link['id']}  tags: {', '.join(link['tags']) or '—'}")

    @app.command("open")
    def open_link(
        link_id: LinkArg,
        browser: Annotated[bool, typer.Option(help="Open it in the browser; else print the URL.")] = False,
        server: ServerURL = "http://127.0.0.1:8000",
        token_value: Token = "",
        as_json: JsonOutput = False,
    ) -> None:
        """Print a link's URL, or open it in the browser.

        Example: linkproc open 3f2a… --browser
        """
        link = _run(server, token_value, lambda client: client.fetch_link(link_id))
        if browser:
            webbrowser.open(link["url"])
        if as_json:
            _echo_json({"id": link["id"], "url": link["url"]})
        else:
            typer.echo(link["url"])
