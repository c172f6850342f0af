"""Live sync through the real Serve app on a local Ray cluster: sockets, fan-out and the SDK."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest
import websockets
from tests.factories import link_created
from tests.pages import article_ids

from linkproc_ray.client import LinkprocClient, SyncState

pytestmark = pytest.mark.ray


async def eventually(condition: Callable[[], Awaitable[bool]], *, timeout: float = 120.0) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.1)


def ws_url(serve_url: str, org: str, token: str, after: int = 0) -> str:
    return f"{serve_url.replace('http', 'ws', 1)}/v1/orgs/{org}/sync?after={after}&token={token}"


async def next_message(socket) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), 60))


async def test_a_processed_links_summary_reaches_a_second_client_live(serve_url, make_token, page_server):
    org = f"live-{uuid.uuid4().hex[:8]}"
    token = make_token(org)
    async with LinkprocClient(serve_url, token) as saver, LinkprocClient(serve_url, token) as reader:
        reader.start()

        async def reader_live() -> bool:
            return reader.status.state is SyncState.LIVE

        await eventually(reader_live)
        link = await saver.add_link(page_server.article_url(article_ids()[0]))
        await saver.sync()

        async def summarized() -> bool:
            seen = await reader.link(link.id)
            return seen is not None and seen.summary is not None

        await eventually(summarized)
        seen = await reader.link(link.id)
        assert seen is not None and seen.processing.status == "completed"
        assert seen.metadata is not None and seen.metadata.title


async def test_two_sockets_of_one_org_get_identical_streams_and_another_org_nothing(serve_url, make_token):
    org, other = f"fan-{uuid.uuid4().hex[:8]}", f"fan-{uuid.uuid4().hex[:8]}"
    token = make_token(org)
    async with (
        websockets.connect(ws_url(serve_url, org, token)) as first,
        websockets.connect(ws_url(serve_url, org, token)) as second,
        websockets.connect(ws_url(serve_url, other, make_token(other))) as outsider,
    ):
        for socket in (first, second, outsider):
            assert (await next_message(socket))["type"] == "events"
        async with httpx.AsyncClient(base_url=serve_url, headers={"Authorization": f"Bearer {token}"}) as http:
            for n in range(5):
                batch = [link_created(f"{n}-{i}").to_json() for i in range(4)]
                response = await http.post(f"/v1/orgs/{org}/events", json={"parent": n * 4, "events": batch})
                assert response.status_code == 200

        async def stream(socket) -> list[dict]:
            events: list[dict] = []
            while len(events) < 20:
                events.extend((await next_message(socket))["events"])
            return events

        first_stream, second_stream = await stream(first), await stream(second)
        assert [e["seq"] for e in first_stream] == list(range(1, 21))
        assert first_stream == second_stream
        await outsider.send(json.dumps({"type": "ping"}))
        assert await next_message(outsider) == {"type": "pong", "head": 0}


async def test_a_push_over_the_socket_is_answered_and_a_wrong_org_is_closed_with_4403(serve_url, make_token):
    org = f"push-{uuid.uuid4().hex[:8]}"
    async with websockets.connect(ws_url(serve_url, org, make_token(org))) as socket:
        await next_message(socket)
        await socket.send(
            json.dumps({"type": "push", "requestId": 1, "parent": 0, "events": [link_created("a").to_json()]})
        )
        answers = [await next_message(socket), await next_message(socket)]
        assert {m["type"] for m in answers} == {"push_ok", "events"}
    async with websockets.connect(ws_url(serve_url, org, make_token("intruder"))) as socket:
        with pytest.raises(websockets.ConnectionClosed):
            await socket.recv()
        assert socket.close_code == 4403
