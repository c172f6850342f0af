"""v1 events: names and args are validated before anything is stored."""

from __future__ import annotations

import pytest

from linkproc_ray.core.events import ARGS_BY_NAME, NewEvent, validate
from linkproc_ray.errors import InvalidEvent


def test_every_design_event_name_is_known():
    for name in (
        "v1.LinkCreated",
        "v1.LinkDeleted",
        "v1.LinkRestored",
        "v1.LinkCompleted",
        "v1.LinkUncompleted",
        "v1.LinkProcessingStarted",
        "v1.LinkProcessingResumed",
        "v1.LinkMetadataFetched",
        "v1.LinkSummarized",
        "v1.LinkProcessingCompleted",
        "v1.LinkProcessingFailed",
        "v1.LinkProcessingCancelled",
        "v1.LinkReprocessRequested",
        "v1.TagCreated",
        "v1.TagDeleted",
        "v1.LinkTagged",
        "v1.LinkUntagged",
        "v1.TagSuggested",
    ):
        assert name in ARGS_BY_NAME


def test_unknown_name_is_refused_naming_it():
    with pytest.raises(InvalidEvent) as info:
        validate("v1.LinkExploded", {})
    assert info.value.event == "v1.LinkExploded"
    assert info.value.field == "name"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"url": "https://a.example/", "domain": "a.example", "createdAt": "t"}, "args.id"),
        ({"id": "l1", "url": 7, "domain": "a.example", "createdAt": "t"}, "args.url"),
        ({"id": "l1", "url": "https://a.example/", "domain": "a.example", "createdAt": "t", "extra": 1}, "args.extra"),
        ({"id": "", "url": "https://a.example/", "domain": "a.example", "createdAt": "t"}, "args.id"),
    ],
)
def test_bad_args_are_refused_naming_event_and_field(args, field):
    with pytest.raises(InvalidEvent) as info:
        validate("v1.LinkCreated", args)
    assert info.value.event == "v1.LinkCreated"
    assert info.value.field == field


def test_resumed_attempt_must_be_an_integer_of_at_least_two():
    validate("v1.LinkProcessingResumed", {"linkId": "l", "attempt": 2, "updatedAt": "t"})
    with pytest.raises(InvalidEvent):
        validate("v1.LinkProcessingResumed", {"linkId": "l", "attempt": "2", "updatedAt": "t"})


def test_wire_event_round_trips_and_rejects_non_objects():
    wire = {"id": "e1", "name": "v1.LinkRestored", "args": {"id": "l1"}, "clientId": "c", "sessionId": "s"}
    assert NewEvent.from_json(wire).to_json() == wire
    with pytest.raises(InvalidEvent) as info:
        NewEvent.from_json(["not", "an", "object"], index=3)
    assert "events[3]" in str(info.value)
    with pytest.raises(InvalidEvent) as info:
        NewEvent.from_json({**wire, "clientId": 5})
    assert info.value.field == "clientId"
