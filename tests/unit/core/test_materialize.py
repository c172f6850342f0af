"""Materializers: the same log gives byte-identical tables on every replica."""

from __future__ import annotations

from pathlib import Path

from tests.factories import completed, event, link_created, started

from linkproc_ray.core.events import Event
from linkproc_ray.core.store import EventStore


def ordered(new_events):
    return [
        Event(seq=i + 1, parent=i, id=e.id, name=e.name, args=e.args, client_id=e.client_id, session_id=e.session_id)
        for i, e in enumerate(new_events)
    ]


FIXED_LOG = ordered(
    [
        link_created("a", "https://a.example/"),
        link_created("b", "https://b.example/"),
        link_created("twin", "https://a.example/"),  # same URL as a live link: ignored
        started("a"),
        event("v1.LinkMetadataFetched", id="m1", linkId="a", title="Old", fetchedAt="t1"),
        event("v1.LinkMetadataFetched", id="m2", linkId="a", title="New", fetchedAt="t2"),
        event("v1.LinkSummarized", id="s1", linkId="a", summary="One. Two.", model="m", summarizedAt="t3"),
        completed("a"),
        event("v1.TagCreated", id="t1", name="news", createdAt="t"),
        event("v1.LinkTagged", linkId="a", tagId="t1"),
        event("v1.TagSuggested", id="ts1", linkId="b", name="tech", suggestedAt="t"),
        event("v1.LinkDeleted", id="b", deletedAt="t4"),
        link_created("c", "https://b.example/"),  # b's URL is free again once b is deleted
        event("v1.LinkRestored", id="b"),  # refused: c now holds the URL
        event("v1.LinkCompleted", id="a", completedAt="t5"),
        event("v1.LinkReprocessRequested", linkId="a", requestedAt="t6"),
    ]
)


async def replay(path: Path, log) -> EventStore:
    store = await EventStore(path).open()
    async with store.transaction() as db:
        await store.apply(db, log)
    return store


async def test_replaying_one_log_twice_gives_identical_tables(tmp_path):
    first = await replay(tmp_path / "one.sqlite", FIXED_LOG)
    second = await replay(tmp_path / "two.sqlite", FIXED_LOG)
    assert await first.dump_tables() == await second.dump_tables()
    await first.close()
    await second.close()


async def test_applying_in_batches_equals_applying_at_once(tmp_path):
    whole = await replay(tmp_path / "whole.sqlite", FIXED_LOG)
    batched = await EventStore(tmp_path / "batched.sqlite").open()
    for start in range(0, len(FIXED_LOG), 3):
        async with batched.transaction() as db:
            await batched.apply(db, FIXED_LOG[start : start + 3])
    assert await whole.dump_tables() == await batched.dump_tables()
    await whole.close()
    await batched.close()


async def test_fixed_log_materializes_the_expected_rows(tmp_path):
    store = await replay(tmp_path / "s.sqlite", FIXED_LOG)
    links = {r["id"]: r for r in await store.fetchall("SELECT * FROM links")}
    assert set(links) == {"a", "b", "c"}, "the twin URL was ignored"
    assert links["b"]["deleted_at"] == "t4", "restore refused while c holds the URL"
    assert links["a"]["status"] == "completed"
    status = await store.fetchall("SELECT * FROM link_processing_status WHERE link_id = 'a'")
    assert status[0]["status"] == "reprocess_requested"
    assert status[0]["attempts"] == 0
    newest = await store.fetchall("SELECT title FROM link_snapshots WHERE link_id = 'a' ORDER BY rowid DESC LIMIT 1")
    assert newest[0]["title"] == "New"
    await store.close()


async def test_terminal_event_keeps_a_pending_reprocess_request(tmp_path):
    log = ordered(
        [
            link_created("a"),
            started("a"),
            event("v1.LinkReprocessRequested", linkId="a", requestedAt="t"),
            completed("a"),
        ]
    )
    store = await replay(tmp_path / "s.sqlite", log)
    rows = await store.fetchall("SELECT status FROM link_processing_status")
    assert rows == [{"status": "reprocess_requested"}]
    await store.close()


async def test_resumes_count_attempts(tmp_path):
    log = ordered(
        [
            link_created("a"),
            started("a"),
            event("v1.LinkProcessingResumed", linkId="a", attempt=2, updatedAt="t"),
        ]
    )
    store = await replay(tmp_path / "s.sqlite", log)
    rows = await store.fetchall("SELECT status, attempts FROM link_processing_status")
    assert rows == [{"status": "pending", "attempts": 2}]
    await store.close()
