"""Convergence, proven by example: however clients interleave, go offline and come back, every replica ends equal.

Equal means byte-identical tables on every client, on the backend, and in a
fresh replay of the backend's log.
"""

from __future__ import annotations

import asyncio
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.sync.conftest import SyncServer, eventually
from tests.unit.sync.wire import rest_pull

from linkproc_ray.client import Backoff, LinkprocClient
from linkproc_ray.core.events import Event
from linkproc_ray.core.store import EventStore
from linkproc_ray.core.types import JSON

CLIENTS = 3
LINKS = ("a", "b", "c")
URLS = ("https://example.com/1", "https://example.com/2")
TAGS = ("t1", "t2")


def link_event(kind: str, link: str, url: str, tag: str, at: str) -> tuple[str, JSON]:
    """One user action as an event: few ids and URLs, so clients collide often."""
    return {
        "create": ("v1.LinkCreated", {"id": link, "url": url, "domain": "example.com", "createdAt": at}),
        "delete": ("v1.LinkDeleted", {"id": link, "deletedAt": at}),
        "restore": ("v1.LinkRestored", {"id": link}),
        "complete": ("v1.LinkCompleted", {"id": link, "completedAt": at}),
        "uncomplete": ("v1.LinkUncompleted", {"id": link}),
        "create_tag": ("v1.TagCreated", {"id": tag, "name": tag, "createdAt": at}),
        "delete_tag": ("v1.TagDeleted", {"id": tag, "deletedAt": at}),
        "tag": ("v1.LinkTagged", {"linkId": link, "tagId": tag, "taggedAt": at}),
        "untag": ("v1.LinkUntagged", {"linkId": link, "tagId": tag}),
    }[kind]


KINDS = ("create", "create", "delete", "restore", "complete", "uncomplete", "create_tag", "delete_tag", "tag", "untag")
steps = st.lists(
    st.tuples(
        st.integers(0, CLIENTS - 1),
        st.sampled_from((*KINDS, "sync")),
        st.sampled_from(LINKS),
        st.sampled_from(URLS),
        st.sampled_from(TAGS),
    ),
    min_size=1,
    max_size=30,
)


async def fresh_replay(server: SyncServer, org: str) -> dict:
    replay = await EventStore(":memory:").open()
    log = [Event.from_json(e) for e in (await rest_pull(server, org, limit=10_000))["events"]]
    async with replay.transaction() as db:
        await replay.apply(db, log)
    tables = await replay.dump_tables()
    await replay.close()
    return tables


async def scenario(server: SyncServer, script: list, comeback_order: list[int]) -> None:
    org = f"prop-{uuid.uuid4().hex[:12]}"
    token = server.token(org)
    clients = [await LinkprocClient(server.url, token, backoff=Backoff(0.05, 0.2)).open() for _ in range(CLIENTS)]
    # Client 0 stays live over the socket; the others work offline and sync now and then.
    clients[0].start()
    try:
        for step, (who, kind, link, url, tag) in enumerate(script):
            if kind == "sync":
                if who != 0:
                    await clients[who].sync()
                continue
            await clients[who].commit(
                *link_event(kind, link, url, tag, f"2026-01-01T00:{step // 60:02d}:{step % 60:02d}Z")
            )
        for who in comeback_order:
            if who != 0:
                await clients[who].sync()

        async def live_client_settled() -> bool:
            head = (await rest_pull(server, org, limit=1))["head"]
            return clients[0].status.pending == 0 and clients[0].head == head

        # Generous: the bound only matters when convergence is broken, and the CPUs are shared.
        await eventually(live_client_settled, timeout=60)
        for client in clients[1:]:
            await client.sync()
        expected = await fresh_replay(server, org)
        backend = await server.backend(org)
        assert await server.call(backend.store.dump_tables()) == expected
        for client in clients:
            assert await client.dump_tables() == expected
    finally:
        for client in clients:
            await client.close()


@settings(max_examples=25, deadline=None)
@given(script=steps, comeback_order=st.permutations(range(CLIENTS)))
def test_replicas_converge_whatever_the_interleaving(sync_server, script, comeback_order):
    asyncio.run(scenario(sync_server, script, comeback_order))
