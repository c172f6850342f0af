"""A live client never pushes an acknowledged commit again, whatever it commits while the ack is applied.

The server refuses a batch that mixes stored and new ids ("part of this batch
is already stored"), and a refused session pushes nothing more: one such
re-push stalls the client's queue for good (the convergence property test
caught it as a live client that never drained).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from typing import Any

import jwt
from tests.unit.sync.conftest import eventually
from websockets.asyncio.server import ServerConnection, serve

from linkproc_ray.client import Backoff, LinkprocClient
from linkproc_ray.core.events import Event


class ScriptedPeer:
    """The server side of the sync socket, by the book but with no live stream: acks are the only news."""

    def __init__(self) -> None:
        self.pushes: list[dict[str, Any]] = []
        self._stored: list[str] = []

    async def handle(self, socket: ServerConnection) -> None:
        await socket.send(json.dumps({"type": "events", "events": [], "head": 0}))
        async for raw in socket:
            push = json.loads(raw)
            self.pushes.append(push)
            ids = [e["id"] for e in push["events"]]
            if any(i in self._stored for i in ids):
                await socket.send(
                    json.dumps(
                        {
                            "type": "push_rejected",
                            "requestId": push["requestId"],
                            "error": "invalid_request",
                            "head": len(self._stored),
                            "detail": "part of this batch is already stored under the same ids",
                        }
                    )
                )
                continue
            parent = len(self._stored)
            self._stored += ids
            seqs = list(range(parent + 1, len(self._stored) + 1))
            await socket.send(
                json.dumps({"type": "push_ok", "requestId": push["requestId"], "head": seqs[-1], "seqs": seqs})
            )


def created(link: str) -> tuple[str, dict[str, Any]]:
    return "v1.LinkCreated", {
        "id": link,
        "url": f"https://example.com/{link}",
        "domain": "example.com",
        "createdAt": "2026-01-01T00:00:00Z",
    }


async def test_a_commit_made_while_an_ack_is_applied_goes_out_alone() -> None:
    peer = ScriptedPeer()
    org = f"org-{uuid.uuid4().hex[:12]}"
    token = jwt.encode({"orgId": org, "sub": "u"}, "not-checked-by-the-peer-but-long-enough-32b")
    async with serve(peer.handle, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with LinkprocClient(f"http://127.0.0.1:{port}", token, backoff=Backoff(0.05, 0.2)) as client:
            first = await client.commit(*created("a"))
            real_confirm = client.replica.confirm
            second_ids: list[str] = []

            async def confirm_after_a_commit(events: Sequence[Event]) -> int:
                # The ack of the first push arrived: commit meanwhile, which wakes the pusher,
                # and let it run as far as it will before the ack is applied.
                if not second_ids and any(e.id == first.id for e in events):
                    second_ids.append((await client.commit(*created("b"))).id)
                    for _ in range(20):
                        await asyncio.sleep(0)
                return await real_confirm(events)

            client.replica.confirm = confirm_after_a_commit  # type: ignore[method-assign]
            client.start()

            async def pushed_twice() -> bool:
                return len(peer.pushes) >= 2

            async def drained() -> bool:
                return client.status.pending == 0 and client.head == 2

            await eventually(pushed_twice, timeout=10)
            assert [(p["parent"], [e["id"] for e in p["events"]]) for p in peer.pushes] == [
                (0, [first.id]),
                (1, second_ids),
            ]
            await eventually(drained, timeout=10)
            assert client.status.last_error is None
