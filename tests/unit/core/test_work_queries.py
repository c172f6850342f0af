"""What the processor asks its replica: which links want work, over every link or over the few a batch names."""

from __future__ import annotations

from pathlib import Path

from tests.factories import completed, event, link_created, started

from linkproc_ray.core import queries
from linkproc_ray.core.events import Event, NewEvent, link_of
from linkproc_ray.core.store import EventStore


def ordered(new_events: list[NewEvent]) -> list[Event]:
    return [e.at(seq=i + 1, parent=i) for i, e in enumerate(new_events)]


LOG = ordered(
    [
        link_created("new"),
        link_created("running"),
        started("running"),
        link_created("done"),
        started("done"),
        completed("done"),
        link_created("again"),
        started("again"),
        completed("again"),
        event("v1.LinkReprocessRequested", linkId="again", requestedAt="t"),
        link_created("gone"),
        started("gone"),
        event("v1.LinkDeleted", id="gone", deletedAt="t"),
    ]
)


async def replica(path: Path) -> EventStore:
    store = await EventStore(path).open()
    async with store.transaction() as db:
        await store.apply(db, LOG)
    return store


async def test_pending_links_are_the_live_links_whose_request_has_not_ended(tmp_path):
    store = await replica(tmp_path / "replica.sqlite")
    pending = await queries.pending_links(store)
    assert [(w.link_id, w.status) for w in pending] == [
        ("new", None),
        ("running", "pending"),
        ("again", "reprocess_requested"),
    ]
    assert await queries.deleted_while_pending(store) == ["gone"]
    await store.close()


async def test_a_narrow_look_answers_as_the_full_one_does_for_the_links_it_names(tmp_path):
    store = await replica(tmp_path / "replica.sqlite")
    full = {w.link_id: w for w in await queries.pending_links(store)}
    for among in ({"new"}, {"done", "again"}, {"gone", "running", "unknown"}, set()):
        narrow = await queries.pending_links(store, among)
        assert narrow == [w for w in full.values() if w.link_id in among]
        assert await queries.deleted_while_pending(store, among) == (["gone"] if "gone" in among else [])
    await store.close()


def test_an_event_names_its_link_by_id_or_link_id_and_tag_events_name_none():
    assert link_of(link_created("a")) == "a"
    assert link_of(event("v1.LinkDeleted", id="a", deletedAt="t")) == "a"
    assert link_of(started("a")) == "a"
    assert link_of(event("v1.TagSuggested", id="s", linkId="a", name="news", suggestedAt="t")) == "a"
    assert link_of(event("v1.TagCreated", id="t", name="news", createdAt="t")) is None
    assert link_of(event("v1.TagDeleted", id="t", deletedAt="t")) is None
