"""The sync backend: ordered, durable, idempotent pushes; pulls and long polls."""

from __future__ import annotations

import asyncio

import pytest
from tests.factories import event, link_created, started

from linkproc_ray.core.store import EventStore
from linkproc_ray.errors import BatchTooLarge, InvalidEvent, ServerAhead
from linkproc_ray.sync.backend import SyncBackend


async def test_push_with_current_parent_is_accepted_with_consecutive_seqs(backend):
    result = await backend.push(0, [link_created("a"), link_created("b")])
    assert result.seqs == [1, 2]
    assert result.head == 2


async def test_push_with_stale_parent_returns_server_ahead_with_head(backend):
    await backend.push(0, [link_created("a")])
    with pytest.raises(ServerAhead) as info:
        await backend.push(0, [link_created("b")])
    assert info.value.head == 1
    assert backend.head == 1


async def test_retried_push_is_answered_with_original_seqs_and_stored_once(backend):
    batch = [link_created("a"), link_created("b")]
    first = await backend.push(0, batch)
    await backend.push(2, [link_created("c")])
    retry = await backend.push(0, batch)  # the ack was lost; the client sends it again
    assert retry.seqs == first.seqs
    assert [e.seq for e in (await backend.pull(0, 100)).events] == [1, 2, 3]


async def test_a_batch_with_one_invalid_event_stores_nothing(backend):
    bad = event("v1.LinkCreated", id="x", url="https://x.example/", domain="x", createdAt="t")
    object.__setattr__(bad, "args", {**bad.args, "url": 5})
    with pytest.raises(InvalidEvent) as info:
        await backend.push(0, [link_created("a"), bad])
    assert info.value.field == "args.url"
    assert backend.head == 0


async def test_limits_refuse_too_many_events_and_too_many_bytes(backend):
    with pytest.raises(BatchTooLarge):
        await backend.push(0, [link_created(f"l{i}") for i in range(1001)])
    wide = [link_created(f"w{i}", url="https://e.example/" + "p" * 2000) for i in range(600)]
    with pytest.raises(BatchTooLarge):
        await backend.push(0, wide)
    assert backend.head == 0


async def test_concurrent_pushes_are_group_committed(backend):
    await asyncio.gather(
        *(backend.create_link(f"https://e.example/{i}", "e.example", None, f"l{i}") for i in range(40))
    )
    assert backend.head == 40
    assert backend.commits < 40


async def test_creating_the_same_url_twice_returns_the_existing_link(backend):
    link, created = await backend.create_link("https://e.example/", "e.example", None, "first")
    again, created_again = await backend.create_link("https://e.example/", "e.example", None, "second")
    assert (created, created_again) == (True, False)
    assert again["id"] == link["id"] == "first"
    assert backend.head == 1


async def test_long_poll_returns_as_soon_as_an_event_arrives(backend):
    waiting = asyncio.create_task(backend.pull(0, 10, wait=10))
    while backend.followers == 0:  # until the pull is parked, waiting for news
        await asyncio.sleep(0)
    assert not waiting.done()
    await backend.push(0, [link_created("a")])
    result = await asyncio.wait_for(waiting, 5)
    assert [e.args["id"] for e in result.events] == ["a"]


async def test_long_poll_without_news_returns_empty_at_its_deadline(backend):
    result = await backend.pull(0, 10, wait=0.1)
    assert result.events == []
    assert result.head == 0


async def test_pull_pages_by_limit(backend):
    await backend.push(0, [link_created(f"l{i}") for i in range(25)])
    first = await backend.pull(0, 10)
    second = await backend.pull(first.events[-1].seq, 10)
    assert [e.seq for e in first.events] == list(range(1, 11))
    assert [e.seq for e in second.events] == list(range(11, 21))
    assert first.head == 25


async def test_poke_follows_link_creation_but_not_other_events(tmp_path):
    pokes: asyncio.Queue[int] = asyncio.Queue()

    async def poke() -> None:
        pokes.put_nowait(sync.head)

    sync = SyncBackend(EventStore(tmp_path / "b.sqlite"), poke=poke)
    await sync.start()
    await sync.push(0, [link_created("a")])
    assert await asyncio.wait_for(pokes.get(), 5) == 1
    await sync.push(1, [started("a")])
    await sync.push(2, [link_created("b")])
    # Pokes go out in commit order: had the Started poked, its poke would come first.
    assert await asyncio.wait_for(pokes.get(), 5) == 3
    assert pokes.empty()
    await sync.close()


async def test_acknowledged_events_survive_a_restart(tmp_path):
    path = tmp_path / "b.sqlite"
    first = SyncBackend(EventStore(path))
    await first.start()
    await first.push(0, [link_created("a"), link_created("b")])
    await first.close()
    again = SyncBackend(EventStore(path))
    await again.start()
    assert again.head == 2
    assert (await again.get_link("b"))["url"] == "https://example.com/b"
    await again.close()


async def test_a_restarted_backend_pokes_when_links_are_unfinished(tmp_path):
    path = tmp_path / "b.sqlite"
    first = SyncBackend(EventStore(path))
    await first.start()
    await first.push(0, [link_created("a")])
    await first.close()
    poked = asyncio.Event()

    async def poke() -> None:
        poked.set()

    again = SyncBackend(EventStore(path), poke=poke)
    await again.start()
    await asyncio.wait_for(poked.wait(), 5)
    await again.close()


async def test_links_created_amid_concurrent_pulls_are_read_back_at_once(backend):
    # Reads interleaved on one connection once shared a snapshot from before
    # the commit they awaited: the new link was "missing" right after its ack.
    for round_ in range(5):
        urls = [f"https://e.example/{round_}/{i % 40}" for i in range(160)]

        async def create(url: str, i: int) -> tuple[dict, bool]:
            await asyncio.sleep((i % 7) / 1000)
            await backend.pull(0, 1000)
            return await backend.create_link(url, "e.example", None, f"{round_}-{i}")  # noqa: B023 - awaited within the round

        results = await asyncio.gather(*(create(url, i) for i, url in enumerate(urls)))
        assert sum(created for _, created in results) == 40
        assert {link["url"] for link, _ in results} == set(urls)
