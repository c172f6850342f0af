"""Speaking the sync protocol from a test: sockets, pushes and pulls over real loopback connections."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx
import websockets
from tests.unit.sync.conftest import SyncServer
from websockets.asyncio.client import ClientConnection

from linkproc_ray.core.events import NewEvent


async def open_socket(
    server: SyncServer, org: str, *, after: int = 0, token: str | None = None, in_query: bool = False
) -> ClientConnection:
    """A sync socket for ``org``; the token goes in the header unless ``in_query``."""
    token = server.token(org) if token is None else token
    url = f"{server.ws_url}/v1/orgs/{org}/sync?after={after}"
    if in_query:
        return await websockets.connect(f"{url}&token={token}", max_size=None)
    return await websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None)


async def receive(socket: ClientConnection) -> dict[str, Any]:
    return json.loads(await socket.recv())


async def close_code(socket: ClientConnection) -> int | None:
    """Read until the server closes; the close code it sent."""
    try:
        while True:
            await socket.recv()
    except websockets.ConnectionClosed:
        return socket.close_code


async def push(
    socket: ClientConnection, parent: int, events: Sequence[NewEvent | dict[str, Any]], request_id: str = "r1"
) -> None:
    wire = [e.to_json() if isinstance(e, NewEvent) else e for e in events]
    await socket.send(json.dumps({"type": "push", "requestId": request_id, "parent": parent, "events": wire}))


async def events_until(socket: ClientConnection, seq: int) -> list[dict[str, Any]]:
    """Every event the socket delivers up to and including ``seq``, skipping other message types."""
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["seq"] < seq:
        message = await receive(socket)
        if message["type"] == "events":
            seen.extend(message["events"])
    return seen


def rest(server: SyncServer, org: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {server.token(org)}"})


async def rest_push(server: SyncServer, org: str, parent: int, events: Sequence[NewEvent]) -> httpx.Response:
    async with rest(server, org) as http:
        return await http.post(
            f"/v1/orgs/{org}/events", json={"parent": parent, "events": [e.to_json() for e in events]}
        )


async def rest_pull(server: SyncServer, org: str, after: int = 0, limit: int = 1000) -> dict[str, Any]:
    async with rest(server, org) as http:
        response = await http.get(f"/v1/orgs/{org}/events", params={"after": after, "limit": limit})
        return response.json()
