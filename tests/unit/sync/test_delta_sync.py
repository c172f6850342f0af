"""Coming back after N events elsewhere fetches exactly those N, in pages, in one wake."""

from __future__ import annotations

from tests.factories import link_created
from tests.unit.sync.wire import open_socket, receive, rest_push

from linkproc_ray.client import LinkprocClient


async def push_links(server, org, first: int, count: int) -> None:
    for start in range(first, first + count, 1000):
        size = min(1000, first + count - start)
        await rest_push(server, org, start, [link_created(f"l{start + i}") for i in range(size)])


async def test_a_socket_back_after_n_events_receives_exactly_those_n_in_pages(sync_server, org):
    await push_links(sync_server, org, 0, 40)
    await push_links(sync_server, org, 40, 2500)
    async with await open_socket(sync_server, org, after=40) as socket:
        pages = [await receive(socket)]
        while pages[-1]["events"][-1]["seq"] < pages[-1]["head"]:
            pages.append(await receive(socket))
    seqs = [e["seq"] for page in pages for e in page["events"]]
    assert len(seqs) == 2500
    assert seqs == list(range(41, 2541))
    assert [len(page["events"]) for page in pages] == [1000, 1000, 500]


async def test_a_client_catches_up_on_5200_events_in_one_sync(sync_server, org):
    async with LinkprocClient(sync_server.url, sync_server.token(org)) as client:
        await push_links(sync_server, org, 0, 30)
        assert await client.sync() == 30
        await push_links(sync_server, org, 30, 5200)
        assert await client.sync() == 5200
        assert client.head == 5230
        assert len(await client.links(limit=10_000)) == 5230
