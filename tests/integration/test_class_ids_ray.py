"""Every process that creates an org actor stores its class under one id (adapters/class_ids.py).

Each backend below runs in a process of its own and creates its org's
processor from its poke. Ray would store the processor's pickled class once
per such process, for the job's life; with one id per code version the GCS's
function table holds it once.
"""

from __future__ import annotations

import asyncio
import pickle

from ray.experimental import internal_kv
from tests.integration.conftest import wait_for

from linkproc_ray.adapters.actors import ActorBackend
from linkproc_ray.config import Settings
from linkproc_ray.core.events import new_id
from linkproc_ray.core.urls import domain_of

FUNCTION_TABLE = b"fun"


def stored_class_ids(class_name: str) -> set[bytes]:
    """The ids under which the GCS holds ``class_name``'s pickled class (``ActorClass:<job>:<id>``)."""
    ids = set()
    for key in internal_kv._internal_kv_list(b"ActorClass:", namespace=FUNCTION_TABLE):
        info = pickle.loads(internal_kv._internal_kv_get(key, namespace=FUNCTION_TABLE))
        if info["class_name"] == class_name:
            ids.add(key.split(b":", 2)[2])
    return ids


def test_backends_that_create_their_processors_store_its_class_once(
    ray_cluster: None, settings: Settings, page_server, org: str
) -> None:
    for n in range(3):
        backend = ActorBackend(f"{org}-{n}", settings)  # no prewakes: the backend's poke creates the processor
        url = page_server.url(f"/{org}-{n}")
        link, _ = asyncio.run(backend.create_link(url, domain_of(url), None, new_id()))
        wait_for(lambda: asyncio.run(backend.get_link(link["id"]))["processing"]["status"] == "failed")  # noqa: B023
    assert len(stored_class_ids("LinkProcessorActor")) == 1
    assert len(stored_class_ids("SyncBackendActor")) == 1
