"""``linkproc import`` and the per-link commands, run as a person runs them, against a real server on loopback.

The commands are built on the SDK; the server is the FastAPI app over
in-process backends (no processor runs here, so links stay queued).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from linkproc_ray.cli.app import app
from linkproc_ray.client import LinkprocClient
from linkproc_ray.core import events as ev
from linkproc_ray.core.bookmarks import Entry
from linkproc_ray.core.events import NewEvent

REPO = Path(__file__).resolve().parents[3]

BOOKMARKS = """<!DOCTYPE NETSCAPE-Bookmark-file-1>
<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=UTF-8">
<DL><p>
    <DT><H3>Programming</H3>
    <DL><p>
        <DT><A HREF="https://blog.example/rust-async-guide">Async Rust</A>
        <DT><A HREF="https://python.example/">Python</A>
        <DT><A HREF="javascript:void(document.title)">A bookmarklet</A>
    </DL><p>
    <DT><A HREF="file:///home/me/notes.txt">Notes</A>
    <DT><A HREF="https://python.example/#again">Python, saved twice</A>
</DL><p>
"""


@pytest.fixture
def run(sync_server, org):
    runner = CliRunner()
    env = {"LINKPROC_URL": sync_server.url, "LINKPROC_TOKEN": sync_server.token(org)}

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(app, list(args), env=env)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


def write(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(path)


def test_importing_a_browser_export_reports_every_entry_and_a_second_run_creates_nothing(run, tmp_path):
    path = write(tmp_path, "bookmarks.html", BOOKMARKS)
    first = run("import", path)
    assert "5 entries (netscape, utf-8): 2 created, 0 exists, 1 duplicate, 2 invalid" in first.output
    assert "entry 3 'javascript:void(document.title)': only absolute http and https URLs are accepted" in first.output
    assert "entry 4 'file:///home/me/notes.txt'" in first.output
    second = run("import", path)
    assert "2 created" not in second.output and "0 created, 2 exists, 1 duplicate, 2 invalid" in second.output


def test_json_output_gives_each_entry_its_outcome_and_place_in_the_file(run, tmp_path):
    document = json.loads(run("import", write(tmp_path, "b.html", BOOKMARKS), "--json").output)
    assert document["file"] == {"format": "netscape", "encoding": "utf-8", "entries": 5}
    assert [(o["position"], o["outcome"]) for o in document["outcomes"]] == [
        (1, "created"),
        (2, "created"),
        (3, "invalid"),
        (4, "invalid"),
        (5, "duplicate"),
    ]
    assert document["outcomes"][4]["id"] == document["outcomes"][1]["id"]


def test_folders_become_tags(run, tmp_path):
    document = json.loads(run("import", write(tmp_path, "b.html", BOOKMARKS), "--json").output)
    link_id = document["outcomes"][0]["id"]
    assert json.loads(run("show", link_id, "--json").output)["tags"] == ["Programming"]


def test_a_plain_list_in_an_old_encoding_is_imported(run, tmp_path):
    path = write(tmp_path, "urls.txt", "https://café.example/menü\nhttps://b.example/\n".encode("cp1252"))
    result = run("import", path)
    assert "2 entries (text, " in result.output and "2 created" in result.output


def test_a_hundred_thousand_entries_each_get_an_outcome(run, tmp_path):
    # 1,000 distinct URLs, each twice in a row, the whole run 50 times over: 100 requests of 1,000.
    lines = "\n".join(f"https://many.example/{(i // 2) % 1000}" for i in range(100_000))
    document = json.loads(run("import", write(tmp_path, "many.txt", lines), "--json").output)
    assert document["counts"] == {"created": 1000, "exists": 49_000, "duplicate": 50_000, "invalid": 0}
    assert len(document["outcomes"]) == 100_000
    assert [o["position"] for o in document["outcomes"]] == list(range(1, 100_001))


def test_a_file_without_bookmarks_is_an_error_that_says_so(run, tmp_path):
    result = run("import", write(tmp_path, "empty.html", "<html><body>nothing</body></html>"), ok=False)
    assert result.exit_code == 1 and "no bookmarks in" in result.output


def test_a_file_that_cannot_be_read_is_an_error_that_says_so(run, tmp_path):
    result = run("import", str(tmp_path / "missing.html"), ok=False)
    assert result.exit_code == 1 and "cannot read" in result.output


# -- the per-link commands -------------------------------------------------------


@pytest.fixture
def link_id(run, tmp_path) -> str:
    document = json.loads(run("import", write(tmp_path, "one.txt", "https://docs.example/guide\n"), "--json").output)
    return str(document["outcomes"][0]["id"])


def push(sync_server, org: str, *made: ev.EventArgs) -> None:
    """Commit events as a processor would, through the public push route."""
    headers = {"Authorization": f"Bearer {sync_server.token(org)}"}
    head = httpx.get(f"{sync_server.url}/v1/orgs/{org}/events", params={"limit": 1}, headers=headers).json()["head"]
    events = [NewEvent.of(args, client_id="test-processor", session_id="s").to_json() for args in made]
    response = httpx.post(
        f"{sync_server.url}/v1/orgs/{org}/events", json={"parent": head, "events": events}, headers=headers
    )
    assert response.status_code == 200, response.text


def test_show_prints_the_processing_history_with_failures_in_words(run, sync_server, org, link_id):
    push(
        sync_server,
        org,
        ev.LinkProcessingStarted(linkId=link_id, updatedAt="2026-01-01T00:00:00Z"),
        ev.LinkProcessingFailed(linkId=link_id, error="fetch:404", updatedAt="2026-01-01T00:00:01Z"),
    )
    text = run("show", link_id).output
    assert "the page was not found (HTTP 404)" in text
    assert "LinkProcessingStarted" in text and "LinkProcessingFailed" in text
    shown = json.loads(run("show", link_id, "--json").output)
    assert [e["name"] for e in shown["history"]] == [
        "v1.LinkCreated",
        "v1.LinkProcessingStarted",
        "v1.LinkProcessingFailed",
    ]


def test_tag_untag_and_search(run, link_id):
    assert "tags: reading" in run("tag", link_id, "reading").output
    hits = json.loads(run("search", "reading", "--json").output)
    assert [hit["id"] for hit in hits] == [link_id]
    assert "guide" in run("search", "guide").output
    assert "tags: —" in run("untag", link_id, "reading").output
    assert "no links match" in run("search", "reading").output


def test_open_prints_the_url(run, link_id):
    assert run("open", link_id).output.strip() == "https://docs.example/guide"
    assert json.loads(run("open", link_id, "--json").output) == {"id": link_id, "url": "https://docs.example/guide"}


def test_reprocess_and_rm(run, link_id):
    assert "reprocessing" in run("reprocess", link_id).output
    assert json.loads(run("rm", link_id, "--json").output)["deletedAt"] is not None
    result = run("rm", link_id, ok=False)
    assert result.exit_code == 1 and "not_found" in result.output


def test_an_unknown_link_is_a_clear_error(run):
    result = run("show", "no-such-link", ok=False)
    assert result.exit_code == 1 and "not_found: no link 'no-such-link'" in result.output


def test_export_writes_a_file_that_imports_into_a_fresh_org(run, sync_server, tmp_path, link_id):
    run("tag", link_id, "docs")
    out = tmp_path / "export.html"
    run("export", "--format", "html", "-o", str(out))
    fresh = CliRunner().invoke(
        app,
        ["import", str(out), "--json"],
        env={"LINKPROC_URL": sync_server.url, "LINKPROC_TOKEN": sync_server.token(f"fresh-{link_id[:8]}")},
    )
    assert json.loads(fresh.output)["counts"]["created"] == 1


# -- the SDK's offline search ------------------------------------------------------


async def test_the_sdk_replica_searches_like_the_server(sync_server, org):
    async with LinkprocClient(sync_server.url, sync_server.token(org)) as client:
        entries = [Entry(1, "https://a.example/tokyo-tower"), Entry(2, "https://b.example/café-paris")]
        assert [o.outcome for o in await client.import_links(entries)] == ["created", "created"]
        await client.sync()
        local = [hit["id"] for hit in await client.search("cafe")]
        remote = [hit["id"] for hit in await client.find("cafe")]
        assert local == remote and len(local) == 1


# -- the README names every command ---------------------------------------------------


def test_every_command_appears_in_the_readme():
    readme = (REPO / "README.md").read_text("utf-8")
    names = [
        command.name or (command.callback.__name__ if command.callback else "") for command in app.registered_commands
    ]
    missing = [name for name in names if not re.search(rf"linkproc {re.escape(name)}\b", readme)]
    assert missing == []


def test_add_saves_one_link_and_ls_lists_it(run):
    added = json.loads(run("add", "https://single.example/page?utm_source=x", "--json").output)
    assert added["url"] == "https://single.example/page"
    assert added["id"] in run("add", "https://single.example/page").output  # the same link again
    assert [link["id"] for link in json.loads(run("ls", "--json").output)] == [added["id"]]
    assert added["id"][:8] in run("ls").output


def test_add_refuses_what_is_not_a_web_address(run):
    result = run("add", "javascript:alert(1)", ok=False)
    assert result.exit_code == 1 and "only absolute http and https URLs are accepted" in result.output
