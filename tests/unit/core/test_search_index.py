"""The search index is part of the read model: built from the log by the materializers, on every replica alike."""

from __future__ import annotations

from tests.factories import event, link_created

from linkproc_ray.core.events import Event
from linkproc_ray.core.search import search_links
from linkproc_ray.core.store import EventStore


def ordered(new_events):
    return [
        Event(seq=i + 1, parent=i, id=e.id, name=e.name, args=e.args, client_id=e.client_id, session_id=e.session_id)
        for i, e in enumerate(new_events)
    ]


LOG = ordered(
    [
        link_created("a", "https://a.example/"),
        link_created("b", "https://b.example/"),
        event("v1.LinkMetadataFetched", id="m1", linkId="a", title="Gardening in winter", fetchedAt="t"),
        event("v1.TagCreated", id="t1", name="compost", createdAt="t"),
        event("v1.LinkTagged", linkId="a", tagId="t1"),
        event("v1.LinkTagged", linkId="b", tagId="t1"),
    ]
)


async def replay(path, log) -> EventStore:
    store = await EventStore(path).open()
    async with store.transaction() as db:
        await store.apply(db, log)
    return store


async def ids(store: EventStore, q: str) -> list[str]:
    return [hit["id"] for hit in await search_links(store, q)]


async def test_a_deleted_tag_leaves_the_index_of_every_link_that_had_it(tmp_path):
    store = await replay(tmp_path / "s.sqlite", LOG)
    assert sorted(await ids(store, "compost")) == ["a", "b"]
    async with store.transaction() as db:
        await store.apply(db, ordered([*LOG, event("v1.TagDeleted", id="t1", deletedAt="t2")])[-1:])
    assert await ids(store, "compost") == []
    assert await ids(store, "gardening") == ["a"]
    await store.close()


async def test_a_store_made_before_the_index_existed_builds_it_at_open(tmp_path):
    path = tmp_path / "old.sqlite"
    store = await replay(path, LOG)
    # As a file written by the previous version: no index rows, no marker.
    await store.db.execute("DELETE FROM links_fts")
    await store.db.execute("DELETE FROM meta WHERE key = 'search_index'")
    await store.close()
    reopened = await EventStore(path).open()
    assert await ids(reopened, "winter") == ["a"]
    assert await reopened.dump_tables() == await (await replay(tmp_path / "new.sqlite", LOG)).dump_tables()
    await reopened.close()


async def test_restoring_a_link_indexes_it_again(tmp_path):
    store = await replay(
        tmp_path / "r.sqlite",
        ordered([*LOG, event("v1.LinkDeleted", id="a", deletedAt="t"), event("v1.LinkRestored", id="a")]),
    )
    assert await ids(store, "winter") == ["a"]
    await store.close()
