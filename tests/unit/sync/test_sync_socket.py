"""WS /v1/orgs/{org}/sync as API.md states it, through a real socket: stream, push, ping, auth, close codes."""

from __future__ import annotations

import json

from tests.factories import event, link_created
from tests.unit.sync.conftest import eventually
from tests.unit.sync.wire import close_code, events_until, open_socket, push, receive, rest_pull, rest_push


async def test_socket_sends_the_backlog_after_the_cursor_then_each_new_batch(sync_server, org):
    await rest_push(sync_server, org, 0, [link_created(f"l{i}") for i in range(5)])
    async with await open_socket(sync_server, org, after=2) as socket:
        backlog = await receive(socket)
        assert [e["seq"] for e in backlog["events"]] == [3, 4, 5]
        assert backlog["head"] == 5
        await rest_push(sync_server, org, 5, [link_created("l5"), link_created("l6")])
        live = await receive(socket)
        assert live == {"type": "events", "events": live["events"], "head": 7}
        assert [e["seq"] for e in live["events"]] == [6, 7]


async def test_an_empty_backlog_is_still_announced_with_the_head(sync_server, org):
    async with await open_socket(sync_server, org) as socket:
        assert await receive(socket) == {"type": "events", "events": [], "head": 0}


async def test_push_over_the_socket_is_acknowledged_and_streamed_back(sync_server, org):
    async with await open_socket(sync_server, org) as socket:
        await receive(socket)
        sent = link_created("a")
        await push(socket, 0, [sent], request_id="req-7")
        answers = [await receive(socket), await receive(socket)]
        ok = next(m for m in answers if m["type"] == "push_ok")
        streamed = next(m for m in answers if m["type"] == "events")
        assert ok == {"type": "push_ok", "requestId": "req-7", "head": 1, "seqs": [1]}
        assert streamed["events"][0]["id"] == sent.id


async def test_push_with_a_stale_parent_is_rejected_with_server_ahead_and_the_head(sync_server, org):
    await rest_push(sync_server, org, 0, [link_created("a"), link_created("b")])
    async with await open_socket(sync_server, org, after=2) as socket:
        await receive(socket)
        await push(socket, 1, [link_created("c")], request_id="stale")
        rejected = await receive(socket)
    assert rejected["type"] == "push_rejected"
    assert (rejected["requestId"], rejected["error"], rejected["head"]) == ("stale", "server_ahead", 2)
    assert (await rest_pull(sync_server, org))["head"] == 2


async def test_ping_is_answered_with_pong_and_the_head(sync_server, org):
    await rest_push(sync_server, org, 0, [link_created("a")])
    async with await open_socket(sync_server, org, after=1) as socket:
        await receive(socket)
        await socket.send(json.dumps({"type": "ping"}))
        assert await receive(socket) == {"type": "pong", "head": 1}


async def test_token_may_come_in_the_query_parameter(sync_server, org):
    async with await open_socket(sync_server, org, in_query=True) as socket:
        assert (await receive(socket))["type"] == "events"


async def test_a_bad_token_closes_with_4401(sync_server, org):
    socket = await open_socket(sync_server, org, token="not-a-jwt")
    assert await close_code(socket) == 4401


async def test_a_missing_token_closes_with_4401(sync_server, org):
    socket = await open_socket(sync_server, org, token="", in_query=True)
    assert await close_code(socket) == 4401


async def test_a_token_of_another_org_closes_with_4403(sync_server, org):
    socket = await open_socket(sync_server, org, token=sync_server.token("someone-else"))
    assert await close_code(socket) == 4403


async def test_a_token_that_expires_while_connected_closes_the_socket_with_4401(sync_server, org):
    socket = await open_socket(sync_server, org, token=sync_server.token(org, ttl=2))
    assert (await receive(socket))["type"] == "events"
    assert await close_code(socket) == 4401


async def test_malformed_json_gets_an_error_then_close_1008(sync_server, org):
    async with await open_socket(sync_server, org) as socket:
        await receive(socket)
        await socket.send("{not json")
        error = await receive(socket)
        assert (error["type"], error["error"]) == ("error", "invalid_request")
        assert await close_code(socket) == 1008


async def test_an_unknown_message_type_gets_an_error_naming_it_then_close_1008(sync_server, org):
    async with await open_socket(sync_server, org) as socket:
        await receive(socket)
        await socket.send(json.dumps({"type": "subscribe"}))
        error = await receive(socket)
        assert "'subscribe'" in error["detail"]
        assert await close_code(socket) == 1008


async def test_binary_frames_are_a_protocol_error(sync_server, org):
    async with await open_socket(sync_server, org) as socket:
        await receive(socket)
        await socket.send(b"\x00\x01")
        assert (await receive(socket))["type"] == "error"
        assert await close_code(socket) == 1008


async def test_a_push_without_request_id_is_a_protocol_error(sync_server, org):
    async with await open_socket(sync_server, org) as socket:
        await receive(socket)
        await socket.send(json.dumps({"type": "push", "parent": 0, "events": []}))
        assert "requestId" in (await receive(socket))["detail"]
        assert await close_code(socket) == 1008


async def test_a_cursor_beyond_the_head_is_refused(sync_server, org):
    socket = await open_socket(sync_server, org, after=5)
    error = await receive(socket)
    assert (error["type"], error["error"]) == ("error", "invalid_request")
    assert "after=5" in error["detail"]
    assert await close_code(socket) == 1008


async def test_two_sockets_of_one_org_receive_identical_streams_and_another_org_nothing(sync_server, org):
    other_org = f"{org}-other"
    first = await open_socket(sync_server, org)
    second = await open_socket(sync_server, org)
    outsider = await open_socket(sync_server, other_org)
    for socket in (first, second, outsider):
        await receive(socket)
    for n in range(4):
        await rest_push(sync_server, org, n * 3, [link_created(f"{n}-{i}") for i in range(3)])
    assert await events_until(first, 12) == await events_until(second, 12)
    # Messages arrive in order, so a pong right away proves nothing came before it.
    await outsider.send(json.dumps({"type": "ping"}))
    assert await receive(outsider) == {"type": "pong", "head": 0}
    for socket in (first, second, outsider):
        await socket.close()


async def test_one_follow_loop_serves_every_socket_of_an_org_and_stops_with_the_last(sync_server, org):
    sockets = [await open_socket(sync_server, org) for _ in range(3)]
    for socket in sockets:
        await receive(socket)
    backend = await sync_server.backend(org)

    async def one_long_poll() -> bool:
        return backend.followers == 1

    await eventually(one_long_poll)
    assert sync_server.hub.followed_orgs().count(org) == 1
    for socket in sockets:
        await socket.close()

    async def unfollowed() -> bool:
        return org not in sync_server.hub.followed_orgs()

    await eventually(unfollowed)


async def test_an_event_with_an_unknown_name_is_rejected_naming_the_event_and_field(sync_server, org):
    async with await open_socket(sync_server, org) as socket:
        await receive(socket)
        bad = {**event("v1.LinkRestored", id="x").to_json(), "name": "v1.LinkTeleported"}
        await push(socket, 0, [bad])
        rejected = await receive(socket)
        assert (rejected["error"], rejected["event"], rejected["field"]) == (
            "invalid_request",
            "v1.LinkTeleported",
            "name",
        )
        await socket.send(json.dumps({"type": "ping"}))
        assert await receive(socket) == {"type": "pong", "head": 0}
