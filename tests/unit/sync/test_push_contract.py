"""Pushes are durable before acknowledged, idempotent on retry, all-or-nothing, and bounded."""

from __future__ import annotations

import asyncio
import json
import sqlite3

from tests.factories import event, link_created
from tests.unit.sync.wire import close_code, open_socket, push, receive, rest, rest_pull, rest_push

from linkproc_ray.core import events as ev
from linkproc_ray.core.limits import MAX_PUSH_EVENTS


async def test_an_acknowledged_push_is_already_in_the_file_on_disk(sync_server, org):
    async with await open_socket(sync_server, org) as socket:
        await receive(socket)
        await push(socket, 0, [link_created("a"), link_created("b")])
        while (await receive(socket))["type"] != "push_ok":
            pass
    path = sync_server.settings.data_dir / "orgs" / org / "backend.sqlite"
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT seq FROM events ORDER BY seq").fetchall() == [(1,), (2,)]


async def test_a_push_retried_after_a_lost_ack_gets_the_original_seqs_over_rest(sync_server, org):
    batch = [link_created("a"), link_created("b")]
    first = await rest_push(sync_server, org, 0, batch)
    await rest_push(sync_server, org, 2, [link_created("c")])
    retry = await rest_push(sync_server, org, 0, batch)
    assert first.json()["seqs"] == retry.json()["seqs"] == [1, 2]
    assert (await rest_pull(sync_server, org))["head"] == 3


async def test_a_push_retried_over_the_socket_gets_the_original_seqs_and_stores_nothing_twice(sync_server, org):
    batch = [link_created("a")]
    async with await open_socket(sync_server, org) as socket:
        await receive(socket)
        for request_id in ("try-1", "try-2"):
            await push(socket, 0, batch, request_id=request_id)
        answers = [m for m in [await receive(socket) for _ in range(3)] if m["type"] == "push_ok"]
    assert [(m["requestId"], m["seqs"]) for m in answers] == [("try-1", [1]), ("try-2", [1])]
    assert [e["seq"] for e in (await rest_pull(sync_server, org))["events"]] == [1]


async def test_one_invalid_event_refuses_the_whole_batch(sync_server, org):
    await rest_push(sync_server, org, 0, [link_created("a"), link_created("b")])
    invalid = {**link_created("x").to_json(), "name": "v1.LinkCompleted", "args": {"id": "a"}}
    async with await open_socket(sync_server, org, after=2) as socket:
        await receive(socket)
        await push(socket, 2, [link_created("c"), invalid, link_created("d")])
        rejected = await receive(socket)
    assert rejected["type"] == "push_rejected"
    assert (rejected["error"], rejected["event"], rejected["field"]) == (
        "invalid_request",
        "v1.LinkCompleted",
        "args.completedAt",
    )
    assert (await rest_pull(sync_server, org))["head"] == 2


async def test_args_failing_validation_are_named_by_event_and_field_over_rest(sync_server, org):
    wire = link_created("a").to_json()
    wire["args"]["url"] = 42
    async with rest(sync_server, org) as http:
        response = await http.post(f"/v1/orgs/{org}/events", json={"parent": 0, "events": [wire]})
    body = response.json()
    assert response.status_code == 422
    assert (body["error"], body["event"], body["field"]) == ("invalid_request", "v1.LinkCreated", "args.url")
    assert (await rest_pull(sync_server, org))["head"] == 0


async def test_a_batch_over_1000_events_is_refused_and_only_its_socket_hears_of_it(sync_server, org):
    bystander = await open_socket(sync_server, org)
    await receive(bystander)
    async with await open_socket(sync_server, org) as socket:
        await receive(socket)
        await push(socket, 0, [link_created(f"l{i}") for i in range(MAX_PUSH_EVENTS + 1)])
        rejected = await receive(socket)
        assert (rejected["type"], rejected["error"], rejected["field"]) == (
            "push_rejected",
            "invalid_request",
            "events",
        )
        assert "1000" in rejected["detail"]
    await bystander.send(json.dumps({"type": "ping"}))
    assert await receive(bystander) == {"type": "pong", "head": 0}
    await bystander.close()


async def test_a_batch_over_1000_events_is_413_over_rest(sync_server, org):
    response = await rest_push(sync_server, org, 0, [link_created(f"l{i}") for i in range(MAX_PUSH_EVENTS + 1)])
    assert (response.status_code, response.json()["error"]) == (413, "too_large")


def _summaries_over_one_megabyte() -> list:
    return [
        event(
            "v1.LinkSummarized",
            id=f"s{i}",
            linkId="a",
            summary="x" * 3000,
            model="m",
            summarizedAt="2026-01-01T00:00:00Z",
        )
        for i in range(400)
    ]


async def test_a_frame_over_1_mb_closes_that_socket_with_1008_and_no_other(sync_server, org):
    bystander = await open_socket(sync_server, org)
    await receive(bystander)
    socket = await open_socket(sync_server, org)
    await receive(socket)
    huge = _summaries_over_one_megabyte()
    await push(socket, 0, huge)
    assert (await receive(socket))["error"] == "too_large"
    assert await close_code(socket) == 1008
    await push(bystander, 0, [link_created("a")])
    assert {(await receive(bystander))["type"], (await receive(bystander))["type"]} == {"push_ok", "events"}
    await bystander.close()


async def test_a_body_over_1_mb_is_413_over_rest(sync_server, org):
    huge = _summaries_over_one_megabyte()
    response = await rest_push(sync_server, org, 0, huge)
    assert (response.status_code, response.json()["error"]) == (413, "too_large")
    assert (await rest_pull(sync_server, org))["head"] == 0


async def test_concurrent_pushes_to_one_org_share_one_commit(sync_server, org):
    backend = await sync_server.backend(org)

    async def twenty_appends_at_once() -> tuple[int, int]:
        before = backend.commits
        await asyncio.gather(*(backend.append([ev.LinkRestored(id=f"l{i}")]) for i in range(20)))
        return before, backend.commits

    before, after = await sync_server.call(twenty_appends_at_once())
    assert after - before == 1
    assert (await rest_pull(sync_server, org))["head"] == 20
