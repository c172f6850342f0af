"""A save that wakes an org's backend wakes its processor alongside (adapters/actors.py ``Prewakes``).

Through the gateway's own :class:`ActorBackend` on the suite's Ray cluster:
the processor is created when the save looks the backend up, not after
the backend has started and poked it; reads and saves on a live backend wake
nothing; and while another org is waking the processor still comes, from the poke. Who
created a processor is read from the GCS: an actor's owner is its creator.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ray
from tests.integration.conftest import wait_for

from linkproc_ray.adapters.actors import ActorBackend, Prewakes, backend_name, processor_handle, processor_name
from linkproc_ray.config import NAMESPACE, Settings
from linkproc_ray.core.events import new_id
from linkproc_ray.core.urls import domain_of


def exists(name: str) -> bool:
    try:
        ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        return False
    return True


def live_actors() -> dict[str, dict[str, Any]]:
    table = ray._private.state.state.actor_table(None, actor_state_name="ALIVE")
    return {entry["Name"]: entry for entry in table.values()}


def created_by_its_backend(org: str) -> bool:
    """Whether the org's live processor was created by its live backend (the poke), not by the saving process."""

    def both_live() -> dict[str, dict[str, Any]] | None:
        live = live_actors()
        return live if {backend_name(org), processor_name(org)} <= live.keys() else None

    live = wait_for(both_live)
    assert isinstance(live, dict)
    owner, backend = live[processor_name(org)]["OwnerAddress"], live[backend_name(org)]["Address"]
    return bool((owner["IPAddress"], owner["Port"]) == (backend["IPAddress"], backend["Port"]))


async def save(backend: ActorBackend, url: str) -> str:
    link, created = await backend.create_link(url, domain_of(url), None, new_id())
    assert created
    return str(link["id"])


def terminal(backend: ActorBackend, link_id: str) -> bool:
    link = asyncio.run(backend.get_link(link_id))
    return link is not None and link["processing"]["status"] == "failed"  # the page answers 404


def test_a_save_to_a_cold_org_wakes_its_processor_before_the_save_returns(
    ray_cluster: None, settings: Settings, page_server, org: str
) -> None:
    woken: list[str] = []

    def wake(name: str) -> None:
        woken.append(name)
        processor_handle(name, settings)

    backend = ActorBackend(org, settings, prewakes=Prewakes(wake, below=1))
    assert not exists(backend_name(org)) and not exists(processor_name(org))
    first = asyncio.run(save(backend, page_server.url(f"/{org}-first")))
    assert woken == [org]
    assert not created_by_its_backend(org)  # created with the backend, not by its poke after the commit
    asyncio.run(backend.list_links())
    second = asyncio.run(save(backend, page_server.url(f"/{org}-second")))
    assert woken == [org]  # the backend was live: nothing to wake
    for link_id in (first, second):
        wait_for(lambda: terminal(backend, link_id))  # noqa: B023


def test_while_another_org_wakes_the_processor_comes_from_the_backends_poke(
    ray_cluster: None, settings: Settings, page_server, org: str
) -> None:
    woken: list[str] = []
    prewakes = Prewakes(lambda name: woken.append(name) or processor_handle(name, settings), below=1)
    orgs = [f"{org}-a", f"{org}-b"]
    backends = {name: ActorBackend(name, settings, prewakes=prewakes) for name in orgs}

    async def save_both() -> list[str]:
        return list(await asyncio.gather(*(save(backends[name], page_server.url(f"/{name}")) for name in orgs)))

    links = asyncio.run(save_both())
    assert len(woken) == 1 and woken[0] in orgs
    (poked,) = set(orgs) - set(woken)
    assert created_by_its_backend(poked) and not created_by_its_backend(woken[0])
    for name, link_id in zip(orgs, links, strict=True):
        wait_for(lambda: terminal(backends[name], link_id))  # noqa: B023


def test_the_ingress_wakes_a_cold_orgs_processor_with_its_backend(api, page_server, org: str) -> None:
    link = api.post("/links", json={"url": page_server.url(f"/{org}")})
    assert link.status_code == 201
    assert not created_by_its_backend(org)
    wait_for(lambda: api.get(f"/links/{link.json()['id']}").json()["processing"]["status"] == "failed")
