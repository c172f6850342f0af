"""The Python SDK: local-first commits, rebase on server_ahead, live sync, reconnects, and a visible stuck queue."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator

import jwt
import pytest
from tests.factories import event, link_created
from tests.unit.sync.conftest import eventually
from tests.unit.sync.wire import rest_pull, rest_push

from linkproc_ray.client import Backoff, Link, LinkprocClient, SyncState

FAST = Backoff(initial=0.05, maximum=0.2)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CuttableProxy:
    """A loopback TCP proxy whose open connections can be cut, like a dropped network."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, upstream_writer]
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def cut(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()


@pytest.fixture
async def client(sync_server, org) -> AsyncIterator[LinkprocClient]:
    async with LinkprocClient(sync_server.url, sync_server.token(org), backoff=FAST) as sdk:
        yield sdk


async def test_a_commit_applies_locally_at_once_and_waits_in_the_queue_while_offline(client):
    link = await client.add_link("https://example.com/offline")
    assert [saved.url for saved in await client.links()] == ["https://example.com/offline"]
    assert link.status == "unread" and link.processing.status is None
    assert (client.status.state, client.status.pending, client.head) == (SyncState.OFFLINE, 1, 0)


async def test_offline_commits_survive_a_restart_and_are_pushed_later(sync_server, org, tmp_path):
    path = tmp_path / "replica.sqlite"
    async with LinkprocClient(sync_server.url, sync_server.token(org), path=path) as first_run:
        await first_run.add_link("https://example.com/kept")
    async with LinkprocClient(sync_server.url, sync_server.token(org), path=path) as second_run:
        assert second_run.status.pending == 1
        await second_run.sync()
        assert second_run.status.pending == 0
    assert [e["args"]["url"] for e in (await rest_pull(sync_server, org))["events"]] == ["https://example.com/kept"]


async def test_a_push_behind_the_server_pulls_rebases_and_pushes_again(sync_server, org, client):
    await client.add_link("https://example.com/mine")
    await rest_push(sync_server, org, 0, [link_created("theirs", "https://example.com/theirs")])
    await client.sync()
    log = (await rest_pull(sync_server, org))["events"]
    assert [e["args"]["url"] for e in log] == ["https://example.com/theirs", "https://example.com/mine"]
    assert (client.head, client.status.pending) == (2, 0)
    assert [saved.url for saved in await client.links()] == ["https://example.com/mine", "https://example.com/theirs"]


async def test_two_offline_saves_of_one_url_keep_the_first_to_reach_the_server_everywhere(sync_server, org):
    token = sync_server.token(org)
    async with LinkprocClient(sync_server.url, token) as alice, LinkprocClient(sync_server.url, token) as bob:
        first = await alice.add_link("https://example.com/same")
        await bob.add_link("https://example.com/same")
        await alice.sync()
        await bob.sync()
        await alice.sync()
        assert [saved.id for saved in await bob.links()] == [first.id]
        assert await alice.dump_tables() == await bob.dump_tables()


async def test_links_come_back_typed_with_status_metadata_and_summary(sync_server, org, client):
    await rest_push(
        sync_server,
        org,
        0,
        [
            link_created("a"),
            event("v1.LinkProcessingStarted", linkId="a", updatedAt="2026-01-01T00:00:01Z"),
            event("v1.LinkMetadataFetched", id="m1", linkId="a", title="A title", fetchedAt="2026-01-01T00:00:02Z"),
            event(
                "v1.LinkSummarized",
                id="s1",
                linkId="a",
                summary="It says things.",
                model="extractive",
                summarizedAt="2026-01-01T00:00:03Z",
            ),
            event("v1.LinkProcessingCompleted", linkId="a", updatedAt="2026-01-01T00:00:04Z"),
        ],
    )
    await client.sync()
    link = await client.link("a")
    assert isinstance(link, Link)
    assert (link.processing.status, link.processing.attempts) == ("completed", 1)
    assert link.metadata is not None and link.metadata.title == "A title"
    assert link.summary is not None and (link.summary.text, link.summary.model) == ("It says things.", "extractive")


async def test_a_live_client_sees_another_clients_change_over_the_socket(sync_server, org, client):
    client.start()
    await eventually(lambda: _is(client, SyncState.LIVE))
    await rest_push(sync_server, org, 0, [link_created("a")])
    await eventually(lambda: _has_link(client, "a"))


async def test_a_live_client_pushes_its_commits_over_the_socket(sync_server, org, client):
    client.start()
    link = await client.add_link("https://example.com/live")
    await eventually(lambda: _drained(client))
    assert [e["args"]["id"] for e in (await rest_pull(sync_server, org))["events"]] == [link.id]


async def test_the_rest_fallback_syncs_both_ways_with_long_polls(sync_server, org):
    async with LinkprocClient(sync_server.url, sync_server.token(org), prefer_websocket=False) as client:
        client.start()
        await eventually(lambda: _is(client, SyncState.POLLING))
        await client.add_link("https://example.com/polled")
        await eventually(lambda: _drained(client))
        await rest_push(sync_server, org, 1, [link_created("b")])
        await eventually(lambda: _has_link(client, "b"))


async def test_a_dropped_connection_reconnects_and_catches_up(sync_server, org):
    proxy = CuttableProxy(sync_server.port)
    url = await proxy.start()
    async with LinkprocClient(url, sync_server.token(org), backoff=FAST) as client:
        client.start()
        await eventually(lambda: _is(client, SyncState.LIVE))
        proxy.cut()
        await rest_push(sync_server, org, 0, [link_created("while-away")])
        await client.add_link("https://example.com/from-the-road")
        await eventually(lambda: _has_link(client, "while-away"))
        await eventually(lambda: _drained(client))
    await proxy.stop()
    assert (await rest_pull(sync_server, org))["head"] == 2


async def test_an_expired_token_stops_live_sync_in_a_visible_state(sync_server, org):
    async with LinkprocClient(sync_server.url, sync_server.token(org, ttl=2), backoff=FAST) as client:
        client.start()
        await eventually(lambda: _is(client, SyncState.UNAUTHORIZED))
        assert "4401" in (client.status.last_error or "")


async def test_pending_commits_that_cannot_drain_are_flagged_not_silent(org):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead_server = f"http://127.0.0.1:{unused.getsockname()[1]}"
    clock = FakeClock()
    async with LinkprocClient(dead_server, _token_for(org), backoff=FAST, drain_alarm=30, clock=clock) as client:
        await client.add_link("https://example.com/stuck")
        client.start()
        await eventually(lambda: _is(client, SyncState.RETRYING))
        assert not client.status.pending_not_draining
        clock.now += 31
        status = client.status
        assert status.pending_not_draining
        assert status.last_error is not None


def test_reconnect_delays_double_from_one_second_to_thirty_with_jitter():
    rng = random.Random(7)
    delays = [Backoff().delay(attempt, rng) for attempt in range(8)]
    ceilings = [1, 2, 4, 8, 16, 30, 30, 30]
    assert all(ceiling / 2 <= delay <= ceiling for delay, ceiling in zip(delays, ceilings, strict=False))
    assert len({round(d, 6) for d in delays[5:]}) == 3  # jittered, not lockstep


def _token_for(org: str) -> str:
    # Never checked: nothing listens at the client's server.
    return jwt.encode({"sub": "t", "orgId": org, "exp": 4102444800}, "k" * 32, algorithm="HS256")


async def _is(client: LinkprocClient, state: SyncState) -> bool:
    return client.status.state is state


async def _has_link(client: LinkprocClient, link_id: str) -> bool:
    return await client.link(link_id) is not None


async def _drained(client: LinkprocClient) -> bool:
    return client.status.pending == 0
