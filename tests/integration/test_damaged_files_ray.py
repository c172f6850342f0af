"""A damaged ``backend.sqlite`` on the real system: that org answers a clear 503, every other org works,
and a restore from a backup taken while the system ran brings it back without a restart.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import ray
from tests.integration.conftest import log_of, wait_for
from tests.pages import article_ids

from linkproc_ray.adapters.actors import backend_name, processor_name
from linkproc_ray.config import NAMESPACE, Settings
from linkproc_ray.core import backup as backups


def terminal(api: httpx.Client, link_id: str) -> bool:
    return api.get(f"/links/{link_id}").json()["processing"]["status"] in {"completed", "failed", "cancelled"}


def stop_org(org: str) -> None:
    """What an operator does before a restore: the org's actors exit (the next request re-creates them)."""
    for name in (backend_name(org), processor_name(org)):
        try:
            ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
        except ValueError:
            pass  # not running

    def gone() -> bool:
        try:
            for name in (backend_name(org), processor_name(org)):
                ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            return True
        return False

    wait_for(gone)


def test_a_damaged_log_fails_only_its_org_clearly_and_a_restore_brings_it_back(
    api, org, serve_url, make_token: Callable[..., str], page_server, settings: Settings, tmp_path: Path
):
    links = [api.post("/links", json={"url": page_server.article_url(p)}).json()["id"] for p in article_ids()[30:33]]
    for link_id in links:
        wait_for(lambda link_id=link_id: terminal(api, link_id), timeout=120)
    before = log_of(api)
    listed = api.get("/links").json()
    backups.backup(settings.data_dir, tmp_path / "backup")  # while the system runs

    stop_org(org)
    log_file = settings.org_dir(org) / "backend.sqlite"
    # A file damaged at rest: its WAL checkpointed into it first (a killed actor leaves the newest
    # pages in the WAL, where damage to the main file would not even be read).
    with sqlite3.connect(log_file) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with log_file.open("r+b") as handle:
        handle.write(b"damaged by a test: not a sqlite header")

    answer = api.get("/links")
    assert answer.status_code == 503
    assert answer.json()["error"] == "unavailable"
    assert answer.json()["detail"].startswith("store_corrupt: backend.sqlite failed its integrity check")
    assert api.post("/links", json={"url": page_server.article_url(article_ids()[34])}).status_code == 503

    other = f"{org[:50]}-other"
    with httpx.Client(
        base_url=f"{serve_url}/v1/orgs/{other}", headers={"Authorization": f"Bearer {make_token(other)}"}, timeout=30
    ) as neighbour:
        saved = neighbour.post("/links", json={"url": page_server.article_url(article_ids()[35])})
        assert saved.status_code == 201
        assert neighbour.get(f"/links/{saved.json()['id']}").status_code == 200

    restored = backups.restore(tmp_path / "backup", settings.data_dir, orgs=[org])
    assert [(c.org, c.head) for c in restored] == [(org, len(before))]
    # No restart: the backend actor that failed to open the damaged file opens the restored one.
    assert api.get("/links").json() == listed
    assert log_of(api) == before
    fresh = api.post("/links", json={"url": page_server.article_url(article_ids()[36])}).json()["id"]
    wait_for(lambda: terminal(api, fresh), timeout=120)
    # The processor rebuilt its replica from the restored log and ran nothing twice.
    started = [e["args"]["linkId"] for e in log_of(api) if e["name"] == "v1.LinkProcessingStarted"]
    assert sorted(started) == sorted([*links, fresh])
