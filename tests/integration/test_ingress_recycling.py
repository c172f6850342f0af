"""A worn-out ingress replica is replaced by Serve, and nothing saved on the way is lost.

Ray keeps an ingress process's handle to every backend actor it ever called,
dead ones too, and the GCS keeps a subscription for each until the process
exits. So a replica that has held ``ingress_recycle_after`` of them fails its
health check on purpose. Here the limit is 3 in an app of its own, so that a
few orgs wear it out.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
import ray
from ray import serve
from tests.integration.conftest import outcome_counts, wait_for

from linkproc_ray.adapters.serve import build_app
from linkproc_ray.client import LinkprocClient, SyncState

pytestmark = pytest.mark.ray

RECYCLE_AFTER = 3
APP = "recycling"


@pytest.fixture(scope="module")
def recycling_url(serve_url: str, app_settings: dict[str, object]) -> Iterator[str]:
    serve.run(build_app({**app_settings, "ingress_recycle_after": RECYCLE_AFTER}), name=APP, route_prefix=f"/{APP}")
    yield f"{serve_url}/{APP}"
    serve.delete(APP)


def ingress_replicas() -> set[str]:
    """The live Ingress replicas of the recycling app, by actor name (each replica gets a new one)."""
    named = ray.util.list_named_actors(all_namespaces=True)
    return {actor["name"] for actor in named if f"{APP}#Ingress" in actor["name"]}


async def test_a_worn_out_ingress_is_replaced_and_every_save_lands_once(
    recycling_url: str, make_token: Callable[..., str], page_server
) -> None:
    first = wait_for(ingress_replicas)
    assert isinstance(first, set) and len(first) == 1
    run = uuid.uuid4().hex[:6]
    orgs = [f"recycle-{run}-{i}" for i in range(RECYCLE_AFTER)]
    watched = f"recycle-{run}-live"
    saved: dict[str, list[str]] = {org: [] for org in [*orgs, watched]}
    statuses: list[int] = []
    latencies: list[float] = []

    async with (
        httpx.AsyncClient(timeout=60) as http,
        LinkprocClient(recycling_url, make_token(watched)) as live,
    ):

        async def save(org: str, n: int) -> None:
            sent = time.monotonic()
            response = await http.post(
                f"{recycling_url}/v1/orgs/{org}/links",
                json={"url": page_server.url(f"/recycle-{run}-{org}-{n}")},  # 404 at once: fast terminal events
                headers={"Authorization": f"Bearer {make_token(org)}"},
            )
            statuses.append(response.status_code)
            latencies.append(time.monotonic() - sent)
            if response.status_code == 201:
                saved[org].append(response.json()["id"])

        live.start()
        async with asyncio.timeout(60):
            while live.status.state is not SyncState.LIVE:
                await asyncio.sleep(0.1)
        # The live client's org and three more: the replica has now held RECYCLE_AFTER + 1 backends.
        for org in orgs:
            await save(org, 0)
        # Keep saving while Serve notices (three failed checks, 10 s apart) and replaces the replica.
        n = 1
        deadline = time.monotonic() + 150
        while ingress_replicas() & first or not ingress_replicas():
            assert time.monotonic() < deadline, "Serve did not replace the worn-out replica within 150 s"
            await save(watched, n)
            n += 1
            await asyncio.sleep(1.0)
        # The new replica takes saves at once, and the live client follows it.
        await save(watched, n)

        async def everything_terminal() -> bool:
            links = {link.id: link for link in await live.links(include_deleted=True, limit=1000)}
            return all(i in links and links[i].processing.status == "failed" for i in saved[watched])

        async with asyncio.timeout(120):
            while not await everything_terminal():
                await asyncio.sleep(0.25)

    print(f"{len(statuses)} saves across the replacement, slowest {max(latencies):.2f} s")
    assert statuses and set(statuses) == {201}, f"a save during the replacement failed: {statuses}"
    assert len(saved[watched]) >= 3
    replacement = ingress_replicas()
    assert len(replacement) == 1 and not replacement & first
    for org, link_ids in saved.items():
        with httpx.Client(
            base_url=f"{recycling_url}/v1/orgs/{org}",
            headers={"Authorization": f"Bearer {make_token(org)}"},
            timeout=30,
        ) as api:
            for link_id in link_ids:
                wait_for(lambda: api.get(f"/links/{link_id}").json()["processing"]["status"] == "failed")  # noqa: B023
                assert outcome_counts(api, link_id) == {"started": 1, "resumed": 0, "terminal": 1}, (org, link_id)
