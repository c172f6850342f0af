"""A Hypothesis fuzzer for the sync socket: random and malformed frames, checked against docs/API.md.

Used by the unit test (uvicorn on loopback) and the integration test (the app
on Ray). Every frame the server sends must be one docs/API.md names, with the
fields it names; it may close only with a documented code, and never with
1011 (a server error) for anything a client sent; the events it streams
continue each other with no gap or repeat.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import websockets
from hypothesis import strategies as st
from tests.factories import CLIENT, SESSION
from websockets.asyncio.client import ClientConnection

DOCUMENTED_CLOSES = frozenset({1000, 1008, 4401, 4403})
"""Close codes a client's frames may cause (1011 is documented, but only for server faults)."""
REJECTIONS = frozenset({"server_ahead", "invalid_request"})
EVENT_KEYS = frozenset({"seq", "parent", "id", "name", "args", "clientId", "sessionId"})

_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_huge = st.sampled_from(["1e400", "-1e400", "9" * 400, "-" + "9" * 400, "NaN", "Infinity", "1.5", "2.0", "-0"])
_ids = st.one_of(st.text(min_size=1, max_size=12), st.integers(), st.none(), st.booleans(), st.floats(allow_nan=False))


def _valid_event(n: int) -> dict[str, Any]:
    return {
        "id": f"fuzz-{n}",
        "name": "v1.TagCreated",
        "args": {"id": f"tag-{n}", "name": f"t{n % 50}", "createdAt": "2026-01-01T00:00:00Z"},
        "clientId": CLIENT,
        "sessionId": SESSION,
    }


_event = st.one_of(
    st.integers(0, 10_000).map(_valid_event),
    st.builds(
        lambda event, key, value: {**event, key: value},
        st.integers(0, 10_000).map(_valid_event),
        st.sampled_from(["id", "name", "args", "clientId", "sessionId"]),
        _json,
    ),
    _json,
)


@st.composite
def _push(draw: st.DrawFn) -> str:
    message: dict[str, Any] = {"type": "push"}
    if draw(st.booleans()):
        message["requestId"] = draw(_ids)
    if draw(st.booleans()):
        message["parent"] = draw(st.one_of(st.integers(-5, 20), st.integers(2**63 - 2, 2**80), _json))
    if draw(st.booleans()):
        message["events"] = draw(st.one_of(st.lists(_event, max_size=4), _json))
    text = json.dumps(message)
    # Numbers JSON allows but Python would not write: huge, infinite, not-a-number.
    if "parent" in message and draw(st.booleans()):
        text = text.replace(json.dumps(message["parent"]), draw(_huge), 1)
    return text


_KNOWN_BAD = st.sampled_from(
    [
        # A lone surrogate in an event id: SQLite cannot store it (was a server error).
        json.dumps({"type": "push", "requestId": "s", "parent": 0, "events": [{**_valid_event(1), "id": "\ud800"}]}),
        json.dumps({"type": "push", "requestId": "\udfff", "parent": 0, "events": []}),
        '{"type": "push", "requestId": 1, "parent": NaN, "events": []}',
        '{"type": "push", "requestId": ' + "9" * 500 + ', "parent": 0, "events": []}',
        '{"type": "ping", "type": "push"}',
        json.dumps({"type": "push", "requestId": "big", "parent": 0, "events": [_valid_event(i) for i in range(1001)]}),
    ]
)

FRAMES = st.one_of(
    _KNOWN_BAD,
    st.text(max_size=200),
    st.binary(max_size=200),
    _json.map(json.dumps),
    st.builds(
        lambda kind, rest: json.dumps({"type": kind, **rest}),
        _json,
        st.dictionaries(st.text(max_size=5), _json, max_size=3),
    ),
    st.just(json.dumps({"type": "ping"})),
    _push(),
    st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 3000).map(lambda depth: '{"type":' * depth + "0" + "}" * depth),
)
"""One frame a client might send: text, binary, JSON of every shape, pushes of every wrong shape."""

SEQUENCES = st.one_of(
    st.lists(FRAMES, min_size=1, max_size=5),
    # Floods: many frames at once, answered in order.
    st.integers(20, 150).map(lambda n: [json.dumps({"type": "ping"})] * n),
    st.integers(5, 40).map(
        lambda n: [
            json.dumps({"type": "push", "requestId": i, "parent": 0, "events": [_valid_event(i)]}) for i in range(n)
        ]
    ),
)


@dataclass
class Transcript:
    """What one socket was told: every message, and how it ended."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    cursor: int = 0

    def check(self, message: Any) -> None:
        """One server frame against docs/API.md."""
        assert isinstance(message, dict), message
        kind = message.get("type")
        if kind == "events":
            assert set(message) == {"type", "events", "head"}, message
            for event in message["events"]:
                assert set(event) == EVENT_KEYS, event
                assert event["seq"] == self.cursor + 1, f"gap or repeat: {event['seq']} after {self.cursor}"
                self.cursor = event["seq"]
            assert message["head"] >= self.cursor
        elif kind == "push_ok":
            assert set(message) == {"type", "requestId", "head", "seqs"}, message
        elif kind == "push_rejected":
            assert (
                {"type", "requestId", "error", "head", "detail"}
                <= set(message)
                <= {"type", "requestId", "error", "head", "detail", "event", "field"}
            ), message
            assert message["error"] in REJECTIONS, message
        elif kind == "pong":
            assert set(message) == {"type", "head"}, message
        elif kind == "error":
            assert set(message) == {"type", "error", "detail"}, message
            assert message["error"] == "invalid_request", message
        else:
            raise AssertionError(f"undocumented message {message!r}")
        self.messages.append(message)


async def converse(socket: ClientConnection, frames: list[str | bytes], *, after: int) -> Transcript:
    """Send ``frames``, then a ping; read until its pong (the socket lives) or the close."""
    transcript = Transcript(cursor=after)
    for frame in frames:
        try:
            await socket.send(frame)
        except websockets.ConnectionClosed:
            break
    try:
        await socket.send(json.dumps({"type": "ping"}))
    except websockets.ConnectionClosed:
        pass
    pings = sum(1 for f in frames if f == json.dumps({"type": "ping"})) + 1
    try:
        async with asyncio.timeout(30):
            while pings:
                message = json.loads(await socket.recv())
                transcript.check(message)
                pings -= message["type"] == "pong"
                if message["type"] == "error":
                    await socket.recv()  # the close follows the error frame
    except websockets.ConnectionClosed:
        transcript.close_code = socket.close_code
        assert transcript.close_code in DOCUMENTED_CLOSES, f"closed with {transcript.close_code}"
        if transcript.messages and transcript.messages[-1]["type"] == "error":
            assert transcript.close_code == 1008
    return transcript


async def fuzz_one(open_socket: Any, pull_log: Any, frames: list[str | bytes]) -> None:
    """One example: a bystander socket and a fuzzed one on the same org; afterwards both the log and the
    bystander show that nothing but acknowledged pushes was stored and that the org still works.

    :param open_socket: ``async (after) -> ClientConnection`` for the org.
    :param pull_log: ``async (after) -> list[event]`` of the org.
    """
    head = len(await pull_log(0))
    bystander = await open_socket(head)
    watch = Transcript(cursor=head)
    watch.check(json.loads(await bystander.recv()))
    fuzzed = await open_socket(head)
    transcript = Transcript(cursor=head)
    transcript.check(json.loads(await fuzzed.recv()))
    transcript = await converse(fuzzed, frames, after=head)
    await fuzzed.close()

    acknowledged = {s for m in transcript.messages if m["type"] == "push_ok" for s in m["seqs"] if s > head}
    stored = await pull_log(head)
    assert [e["seq"] for e in stored] == sorted(acknowledged), "stored events that were never acknowledged"

    # The org's other socket saw every stored event in order and still answers a ping and a push.
    await bystander.send(json.dumps({"type": "ping"}))
    while True:
        message = json.loads(await bystander.recv())
        watch.check(message)
        if message["type"] == "pong":
            break
    assert watch.cursor == head + len(stored)
    after = head + len(stored)
    event = {**_valid_event(0), "id": f"bystander-{after}"}
    await bystander.send(json.dumps({"type": "push", "requestId": "b", "parent": after, "events": [event]}))
    while True:
        message = json.loads(await bystander.recv())
        watch.check(message)
        if message["type"] == "push_ok":
            assert message["seqs"] == [after + 1]
            break
    await bystander.close()
