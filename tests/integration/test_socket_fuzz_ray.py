"""The socket fuzzer (tests/socket_fuzz.py) against the real app on the session's Ray cluster.

The same checks as the unit test, through the Serve proxy and the org's backend
actor: only documented answers and close codes, nothing stored that was not
acknowledged, and the org's other socket keeps working.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import websockets
from hypothesis import HealthCheck, given, settings
from tests.socket_fuzz import SEQUENCES, fuzz_one

FUZZ_ORG = "socket-fuzz-ray"


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(frames=SEQUENCES)
def test_random_frames_on_ray_get_only_documented_answers_and_the_org_keeps_working(
    serve_url: str, make_token: Callable[..., str], frames
):
    token = make_token(FUZZ_ORG)
    ws_url = serve_url.replace("http://", "ws://") + f"/v1/orgs/{FUZZ_ORG}/sync"

    async def example() -> None:
        async def connect(after: int):
            return await websockets.connect(
                f"{ws_url}?after={after}", additional_headers={"Authorization": f"Bearer {token}"}, max_size=None
            )

        async def pull_log(after: int):
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
                response = await http.get(
                    f"{serve_url}/v1/orgs/{FUZZ_ORG}/events", params={"after": after, "limit": 10_000}
                )
                return response.json()["events"]

        await fuzz_one(connect, pull_log, frames)

    asyncio.run(example())
    assert httpx.get(f"{serve_url}/healthz").json() == {"status": "ok"}
