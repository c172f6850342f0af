"""The sync socket under a Hypothesis fuzzer, through real sockets on uvicorn (see tests/socket_fuzz.py)."""

from __future__ import annotations

import asyncio

import httpx
from hypothesis import HealthCheck, given, settings
from tests.socket_fuzz import SEQUENCES, fuzz_one
from tests.unit.sync.wire import open_socket, rest_pull

FUZZ_ORG = "socket-fuzz"


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples in every run: CI fails only for a change, not for luck
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(frames=SEQUENCES)
def test_random_frames_get_only_documented_answers_and_the_org_keeps_working(sync_server, frames):
    async def example() -> None:
        async def connect(after: int):
            return await open_socket(sync_server, FUZZ_ORG, after=after)

        async def pull_log(after: int):
            return (await rest_pull(sync_server, FUZZ_ORG, after=after, limit=10_000))["events"]

        await fuzz_one(connect, pull_log, frames)

    asyncio.run(example())
    assert httpx.get(f"{sync_server.url}/healthz").json() == {"status": "ok"}
