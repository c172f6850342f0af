"""The event store: ordered, durable, and strict about continuity."""

from __future__ import annotations

import pytest
from tests.factories import link_created

from linkproc_ray.core.events import Event
from linkproc_ray.core.store import EventStore
from linkproc_ray.errors import StoreError


def at(seq: int, new_event) -> Event:
    e = new_event
    return Event(seq, seq - 1, e.id, e.name, e.args, e.client_id, e.session_id)


async def test_store_uses_wal_and_full_sync(fresh_store):
    mode = await fresh_store.fetchall("PRAGMA journal_mode")
    sync = await fresh_store.fetchall("PRAGMA synchronous", in_transaction=True)
    assert mode[0]["journal_mode"] == "wal"
    assert sync[0]["synchronous"] == 2  # FULL


async def test_a_rebuildable_replica_skips_the_fsync_but_keeps_wal(tmp_path):
    # The processor's replica: a commit lost to a power cut is pulled again from its cursor.
    replica = await EventStore(tmp_path / "processor.sqlite", keep_log=False, durable=False).open()
    mode = await replica.fetchall("PRAGMA journal_mode")
    sync = await replica.fetchall("PRAGMA synchronous", in_transaction=True)
    assert (mode[0]["journal_mode"], sync[0]["synchronous"]) == ("wal", 1)  # NORMAL
    await replica.close()


async def test_events_survive_reopening_the_file(store_path):
    store = await EventStore(store_path).open()
    async with store.transaction() as db:
        await store.apply(db, [at(1, link_created("a")), at(2, link_created("b"))])
    await store.close()
    reopened = await EventStore(store_path).open()
    assert reopened.head == 2
    assert [e.args["id"] for e in await reopened.read_events(0, 10)] == ["a", "b"]
    await reopened.close()


async def test_a_gap_in_seqs_is_refused_and_rolled_back(fresh_store):
    with pytest.raises(StoreError):
        async with fresh_store.transaction() as db:
            await fresh_store.apply(db, [at(1, link_created("a")), at(3, link_created("b"))])
    assert fresh_store.head == 0
    assert await fresh_store.read_events(0, 10) == []


async def test_readers_never_see_an_open_transaction(fresh_store):
    async with fresh_store.transaction() as db:
        await fresh_store.apply(db, [at(1, link_created("a"))])
        assert await fresh_store.read_events(0, 10) == []
    assert len(await fresh_store.read_events(0, 10)) == 1
