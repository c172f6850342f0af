"""Damaged SQLite files, made for real: garbage headers, truncated files, and a replica rebuilt from the log."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.factories import link_created
from tests.pages import article_ids
from tests.processor_harness import Org

from linkproc_ray.core.events import Event
from linkproc_ray.core.store import EventStore
from linkproc_ray.errors import CorruptStore


def at(seq: int, new_event) -> Event:
    e = new_event
    return Event(seq, seq - 1, e.id, e.name, e.args, e.client_id, e.session_id)


async def write_events(path: Path, count: int, *, keep_log: bool = True) -> None:
    store = await EventStore(path, keep_log=keep_log).open()
    async with store.transaction() as db:
        await store.apply(
            db, [at(i + 1, link_created(f"l{i}", url=f"https://e.example/{'p' * 500}/{i}")) for i in range(count)]
        )
    await store.close()  # the last connection checkpoints the WAL into the file


def truncate_to_half(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def overwrite_header(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.write(b"this is not a sqlite file at all")


@pytest.mark.parametrize("damage", [truncate_to_half, overwrite_header])
async def test_a_damaged_log_is_refused_at_open_and_left_as_it_is(tmp_path, damage, caplog):
    path = tmp_path / "backend.sqlite"
    await write_events(path, 200)
    damage(path)
    damaged = path.read_bytes()
    with pytest.raises(CorruptStore, match="backend.sqlite failed its integrity check"):
        await EventStore(path).open()
    assert path.read_bytes() == damaged
    assert any(r.levelname == "CRITICAL" and "integrity check" in r.message for r in caplog.records)


@pytest.mark.parametrize("damage", [truncate_to_half, overwrite_header])
async def test_a_damaged_replica_is_moved_aside_and_opened_empty(tmp_path, damage):
    path = tmp_path / "processor.sqlite"
    await write_events(path, 200, keep_log=False)
    damage(path)
    damaged = path.read_bytes()
    store = await EventStore(path, keep_log=False).open_or_rebuild()
    assert store.head == 0
    assert await store.dump_tables() == {table: [] for table in await store.dump_tables()}
    await store.close()
    [aside] = tmp_path.glob("processor.sqlite.corrupt-*")
    assert aside.read_bytes() == damaged


async def test_a_log_is_never_rebuilt(tmp_path):
    with pytest.raises(Exception, match="only a replica"):
        await EventStore(tmp_path / "backend.sqlite").open_or_rebuild()


async def test_a_damaged_processor_file_is_rebuilt_from_the_log_and_each_link_runs_at_most_once_more(
    tmp_path, page_server
):
    slow = page_server.drip("/slow-damaged", interval=0.2, count=10)
    async with Org(tmp_path, page_server.host_port) as org:
        org.new_processor()
        for i in range(3):
            await org.backend.create_link(page_server.article_url(article_ids()[i]), "127.0.0.1", None, f"done-{i}")
        await org.wait_terminal([f"done-{i}" for i in range(3)])
        await org.backend.create_link(slow, "127.0.0.1", None, "interrupted")
        await org.wait_for_event("interrupted", "v1.LinkProcessingStarted")
        await org.crash_processor()
        before = [e.seq for e in await org.log()]
        truncate_to_half(tmp_path / "processor.sqlite")

        rebuilt = org.new_processor()
        await rebuilt.poke()
        await org.wait_terminal(["interrupted"])
        await org.settled()
        assert list(tmp_path.glob("processor.sqlite.corrupt-*"))
        assert rebuilt.head == org.backend.head
        log = await org.log()
        after = [e for e in log if e.seq > before[-1]]
        # The finished links got nothing more; the interrupted one was resumed, not started again.
        assert not [e for e in after if e.args.get("linkId", "").startswith("done-")]
        assert (await org.names_for("interrupted")).count("v1.LinkProcessingStarted") == 1
        assert [e.name for e in after if e.name == "v1.LinkProcessingResumed"] == ["v1.LinkProcessingResumed"]
        assert await org.started_counts() == {"done-0": 1, "done-1": 1, "done-2": 1, "interrupted": 1}
        assert set((await org.terminal_counts()).values()) == {1}
        replica = await rebuilt.store.dump_tables()
        assert replica == await org.backend.store.dump_tables()
