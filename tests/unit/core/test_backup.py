"""Backups taken while an org is being written, restores of them, and the refusals that protect a live org."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.factories import event, link_created
from typer.testing import CliRunner

from linkproc_ray.cli import app
from linkproc_ray.core import backup as backups
from linkproc_ray.core.store import EventStore
from linkproc_ray.errors import BackupError
from linkproc_ray.sync.backend import SyncBackend


async def replayed_tables(tmp: Path, events) -> dict:
    """The tables a fresh store makes from ``events``: what any replica of that log holds."""
    store = await EventStore(tmp / "replay.sqlite").open()
    async with store.transaction() as db:
        await store.apply(db, events)
    tables = await store.dump_tables()
    await store.close()
    return tables


async def busy_org(data_dir: Path, org: str, until: asyncio.Event) -> SyncBackend:
    """An org whose backend keeps committing links and tags until ``until`` is set."""
    backend = SyncBackend(EventStore(data_dir / "orgs" / org / "backend.sqlite"))
    await backend.start()

    async def write() -> None:
        n = 0
        while not until.is_set():
            await backend.push(
                backend.head, [link_created(f"{org}-{n}"), event("v1.LinkCompleted", id=f"{org}-{n}", completedAt="t")]
            )
            n += 1
            await asyncio.sleep(0)

    backend.writer_task = asyncio.ensure_future(write())  # type: ignore[attr-defined]
    return backend


async def test_a_backup_taken_while_orgs_write_is_a_consistent_prefix_of_each_log(tmp_path):
    data, target = tmp_path / "data", tmp_path / "backup"
    stop = asyncio.Event()
    orgs = {org: await busy_org(data, org, stop) for org in ("acme", "globex")}
    while min(b.head for b in orgs.values()) < 200:
        await asyncio.sleep(0.01)
    copies = await asyncio.to_thread(backups.backup, data, target)
    stop.set()
    for backend in orgs.values():
        await backend.writer_task  # type: ignore[attr-defined]
    assert [c.org for c in copies] == ["acme", "globex"]
    for copy in copies:
        live = orgs[copy.org]
        assert 200 <= copy.head < live.head, "the copy was taken mid-stream"
        saved = await EventStore(target / "orgs" / copy.org / "backend.sqlite").open()
        expected = (await live.pull(0, 10_000)).events[: copy.head]
        assert saved.head == copy.head
        assert await saved.read_events(0, 10_000) == expected
        assert await saved.dump_tables() == await replayed_tables(tmp_path / copy.org, expected)
        await saved.close()
        await live.close()
    manifest = json.loads((target / "manifest.json").read_text())
    assert [o["org"] for o in manifest["orgs"]] == ["acme", "globex"]


async def test_a_restored_org_has_the_same_log_and_tables_and_no_stale_replica(tmp_path):
    data, target, fresh = tmp_path / "data", tmp_path / "backup", tmp_path / "fresh"
    backend = SyncBackend(EventStore(data / "orgs" / "acme" / "backend.sqlite"))
    await backend.start()
    await backend.push(0, [link_created(f"l{i}") for i in range(50)])
    original_log = (await backend.pull(0, 1000)).events
    original_tables = await backend.store.dump_tables()
    await backend.close()
    backups.backup(data, target)
    # A replica ahead of the log being restored must not survive it.
    replica = fresh / "orgs" / "acme" / "processor.sqlite"
    replica.parent.mkdir(parents=True)
    replica.write_bytes(b"a replica of a newer log")

    restored = backups.restore(target, fresh)

    assert [(c.org, c.head) for c in restored] == [("acme", 50)]
    assert not replica.exists()
    again = SyncBackend(EventStore(fresh / "orgs" / "acme" / "backend.sqlite"))
    await again.start()
    assert (await again.pull(0, 1000)).events == original_log
    assert await again.store.dump_tables() == original_tables
    assert (await again.push(50, [link_created("after-restore")])).seqs == [51]
    await again.close()


def test_restoring_an_org_whose_log_is_open_elsewhere_is_refused_and_replaces_nothing(tmp_path):
    data, target = tmp_path / "data", tmp_path / "backup"
    asyncio.run(_small_org(data, "acme"))
    backups.backup(data, target)
    live = data / "orgs" / "acme" / "backend.sqlite"
    # A running backend: another process with the log open (WAL), idle between requests.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, str(live)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        before = live.read_bytes()
        with pytest.raises(BackupError, match="acme is running"):
            backups.restore(target, data)
        assert live.read_bytes() == before
        assert not list(live.parent.glob("*.restoring"))
    finally:
        holder.communicate("")
    assert [c.org for c in backups.restore(target, data)] == ["acme"]


HOLD_OPEN = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("SELECT count(*) FROM events").fetchall()
print("open", flush=True)
sys.stdin.read()
"""


def test_a_damaged_copy_is_refused_before_anything_is_replaced(tmp_path):
    data, target = tmp_path / "data", tmp_path / "backup"
    for org in ("acme", "globex"):
        asyncio.run(_small_org(data, org))
    backups.backup(data, target)
    copy = target / "orgs" / "globex" / "backend.sqlite"
    os.truncate(copy, copy.stat().st_size // 2)
    before = {org: (data / "orgs" / org / "backend.sqlite").read_bytes() for org in ("acme", "globex")}
    with pytest.raises(BackupError) as refused:
        backups.restore(target, data)
    assert "the copy of globex cannot be restored" in str(refused.value)
    assert {org: (data / "orgs" / org / "backend.sqlite").read_bytes() for org in before} == before


def test_a_folder_without_a_manifest_is_not_a_backup(tmp_path):
    (tmp_path / "half" / "orgs" / "acme").mkdir(parents=True)
    with pytest.raises(BackupError, match="not a complete backup"):
        backups.restore(tmp_path / "half", tmp_path / "data")


def test_a_backup_never_writes_into_a_folder_that_holds_something(tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    with pytest.raises(BackupError, match="not empty"):
        backups.backup(tmp_path / "data", tmp_path / "used")


def test_the_cli_backs_up_and_restores_and_says_why_it_refuses(tmp_path):
    data, target = tmp_path / "data", tmp_path / "backup"
    asyncio.run(_small_org(data, "acme"))
    runner = CliRunner()

    def said(result) -> str:
        return " ".join(result.output.split())

    done = runner.invoke(app, ["backup", str(target), "--data-dir", str(data)])
    assert done.exit_code == 0, done.output
    assert "acme" in said(done) and "backed up 1 org" in said(done)
    again = runner.invoke(app, ["backup", str(target), "--data-dir", str(data)])
    assert again.exit_code == 1 and "is not empty: back up into a new folder" in said(again)
    restored = runner.invoke(app, ["restore", str(target), "--org", "acme", "--data-dir", str(tmp_path / "other")])
    assert restored.exit_code == 0, restored.output
    assert (tmp_path / "other" / "orgs" / "acme" / "backend.sqlite").exists()
    unknown = runner.invoke(app, ["restore", str(target), "--org", "nobody", "--data-dir", str(data)])
    assert unknown.exit_code == 1 and "the backup holds no org nobody" in said(unknown)


async def _small_org(data: Path, org: str) -> None:
    backend = SyncBackend(EventStore(data / "orgs" / org / "backend.sqlite"))
    await backend.start()
    await backend.push(0, [link_created(f"{org}-{i}") for i in range(20)])
    await backend.close()
