"""Callers that give up half-way (a socket closed, a long poll abandoned) must not hurt the ones that stay.

Both defects were found by the socket fuzzer (tests/unit/sync/test_socket_fuzz.py).
"""

from __future__ import annotations

import asyncio

from tests.factories import link_created

from linkproc_ray.core.events import Event
from linkproc_ray.core.store import EventStore
from linkproc_ray.sync.backend import SyncBackend


def at(seq: int, new_event) -> Event:
    e = new_event
    return Event(seq, seq - 1, e.id, e.name, e.args, e.client_id, e.session_id)


async def test_a_read_cancelled_half_way_never_hides_later_commits(fresh_store: EventStore):
    async with fresh_store.transaction() as db:
        await fresh_store.apply(db, [at(i + 1, link_created(f"l{i}")) for i in range(300)])
    missed = []
    for trial in range(100):
        reader = asyncio.ensure_future(fresh_store.read_events(0, 10_000))
        # Cancel at different points of the read: before, during and after the statement runs.
        for _ in range(trial % 5):
            await asyncio.sleep(0)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        head = fresh_store.head
        async with fresh_store.transaction() as db:
            await fresh_store.apply(db, [at(head + 1, link_created(f"after-{trial}"))])
        if not await fresh_store.read_events(head, 10):
            missed.append(trial)
    assert missed == []


async def test_a_push_whose_caller_gave_up_leaves_the_rest_of_its_group_answered_and_followers_woken(
    backend: SyncBackend,
):
    follower = asyncio.ensure_future(backend.pull(0, 100, wait=30))
    await asyncio.sleep(0)
    abandoned = asyncio.ensure_future(backend.push(0, [link_created("abandoned")]))
    kept = asyncio.ensure_future(backend.push(1, [link_created("kept")]))
    await asyncio.sleep(0)
    abandoned.cancel()
    async with asyncio.timeout(15):
        answered = await kept
        woken = await follower
    # The abandoned push was queued first and is committed all the same; the one queued after it is answered.
    assert answered.seqs == [2]
    assert [e.args["id"] for e in (await backend.pull(0, 100)).events] == ["abandoned", "kept"]
    assert woken.events
