"""A full data disk, for real: the org's files on a small tmpfs, the sync server on loopback.

A push or save on a full disk answers 507 ``storage_full``; nothing is
acknowledged that was not stored, nothing stored is damaged, and the org works
again once space is freed, without a restart.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.disk import fill, small_filesystem
from tests.factories import link_created
from tests.unit.sync.conftest import SyncServer
from tests.unit.sync.wire import close_code, open_socket, push, receive


@pytest.fixture
def full_disk_server() -> Iterator[SyncServer]:
    with small_filesystem("4m") as mount:
        server = SyncServer(mount).start()
        try:
            yield server
        finally:
            server.stop()


def integrity(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("PRAGMA integrity_check")]


async def test_a_full_disk_answers_507_stores_nothing_unacknowledged_and_recovers_without_restart(
    full_disk_server, org
):
    server = full_disk_server
    auth = {"Authorization": f"Bearer {server.token(org)}"}
    async with httpx.AsyncClient(base_url=f"{server.url}/v1/orgs/{org}", headers=auth, timeout=30) as http:
        acknowledged: list[str] = []
        head = 0
        for n in range(5):
            batch = [link_created(f"before-{n}-{i}") for i in range(3)]
            response = await http.post("/events", json={"parent": head, "events": [e.to_json() for e in batch]})
            assert response.status_code == 200
            head = response.json()["head"]
            acknowledged += [e.id for e in batch]
        socket = await open_socket(server, org, after=head)
        await receive(socket)

        filler = fill(Path(server.settings.data_dir) / "filler")
        refused: list[str] = []
        answers: set[int] = set()
        # Pages already allocated may take a few more writes; the disk refuses soon after.
        for n in range(200):
            batch = [link_created(f"full-{n}-{i}", url=f"https://example.com/{'x' * 1500}/{n}/{i}") for i in range(20)]
            response = await http.post("/events", json={"parent": head, "events": [e.to_json() for e in batch]})
            answers.add(response.status_code)
            if response.status_code == 200:
                head = response.json()["head"]
                acknowledged += [e.id for e in batch]
                continue
            assert response.status_code == 507
            body = response.json()
            assert body["error"] == "storage_full"
            assert "disk is full" in body["detail"]
            refused += [e.id for e in batch]
            break
        assert answers <= {200, 507} and refused, f"the disk never filled: {answers}"

        saved = await http.post("/links", json={"url": "https://example.com/while-full"})
        assert (saved.status_code, saved.json()["error"]) == (507, "storage_full")
        # A socket push on a full disk ends that socket with the cause, as a server error (1011).
        await push(socket, head, [link_created("over-the-socket")], request_id="full")
        error = await receive(socket)
        assert (error["type"], error["error"]) == ("error", "storage_full")
        assert await close_code(socket) == 1011

        pulled = (await http.get("/events", params={"limit": 10_000})).json()
        stored = [e["id"] for e in pulled["events"]]
        assert stored == acknowledged
        assert pulled["head"] == head
        assert integrity(Path(server.settings.data_dir) / "orgs" / org / "backend.sqlite") == ["ok"]

        filler.unlink()
        again = link_created("after-space-freed")
        response = await http.post("/events", json={"parent": head, "events": [again.to_json()]})
        assert response.status_code == 200
        assert response.json()["seqs"] == [head + 1]
        assert (await http.post("/links", json={"url": "https://example.com/after"})).status_code == 201
        async with await open_socket(server, org, after=head + 2) as fresh:
            assert (await receive(fresh))["head"] == head + 2
        final = (await http.get("/events", params={"limit": 10_000})).json()
        assert [e["id"] for e in final["events"]][: len(acknowledged) + 1] == [*acknowledged, again.id]
        assert not set(refused) & {e["id"] for e in final["events"]}
