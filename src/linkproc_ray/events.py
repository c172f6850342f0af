"""The v1 event vocabulary: envelopes, names and validated args.

Events are immutable facts. A name never changes meaning: new optional args
may be added, anything breaking becomes a new name (``v2.…``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import BatchTooLarge, InvalidEvent
from .types import JSON

MAX_ID_LENGTH: Final = 128
MAX_URL_LENGTH: Final = 2048
MAX_PUSH_EVENTS: Final = 1000
MAX_PUSH_BYTES: Final = 1_000_000


def utc_now() -> str:
    """The current time as the ISO-8601 UTC string events carry."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    """A fresh unique id for an event or an entity made by this process."""
    return uuid.uuid4().hex


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


_Id = Field(min_length=1, max_length=MAX_ID_LENGTH)
_Date = Field(min_length=1, max_length=64)


class LinkCreated(_Args):
    id: str = _Id
    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH)
    domain: str = Field(max_length=300)
    createdAt: str = _Date
    source: str | None = Field(default=None, max_length=100)


class LinkDeleted(_Args):
    id: str = _Id
    deletedAt: str = _Date


class LinkRestored(_Args):
    id: str = _Id


class LinkCompleted(_Args):
    id: str = _Id
    completedAt: str = _Date


class LinkUncompleted(_Args):
    id: str = _Id


class LinkProcessingStarted(_Args):
    linkId: str = _Id
    updatedAt: str = _Date


class LinkProcessingResumed(_Args):
    linkId: str = _Id
    attempt: int = Field(ge=2, le=1000)
    updatedAt: str = _Date


class LinkMetadataFetched(_Args):
    id: str = _Id
    linkId: str = _Id
    title: str | None = Field(default=None, max_length=1000)
    description: str | None = Field(default=None, max_length=4000)
    image: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    favicon: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    siteName: str | None = Field(default=None, max_length=300)
    canonicalUrl: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    fetchedAt: str = _Date


class LinkSummarized(_Args):
    id: str = _Id
    linkId: str = _Id
    summary: str = Field(min_length=1, max_length=4000)
    model: str = Field(min_length=1, max_length=200)
    summarizedAt: str = _Date


class LinkProcessingCompleted(_Args):
    linkId: str = _Id
    updatedAt: str = _Date


class LinkProcessingFailed(_Args):
    linkId: str = _Id
    error: str = Field(min_length=1, max_length=200)
    updatedAt: str = _Date


class LinkProcessingCancelled(_Args):
    linkId: str = _Id
    updatedAt: str = _Date


class LinkReprocessRequested(_Args):
    linkId: str = _Id
    requestedAt: str = _Date


class TagCreated(_Args):
    id: str = _Id
    name: str = Field(min_length=1, max_length=64)
    createdAt: str = _Date


class TagDeleted(_Args):
    id: str = _Id
    deletedAt: str = _Date


class LinkTagged(_Args):
    linkId: str = _Id
    tagId: str = _Id
    taggedAt: str | None = Field(default=None, max_length=64)


class LinkUntagged(_Args):
    linkId: str = _Id
    tagId: str = _Id


class TagSuggested(_Args):
    id: str = _Id
    linkId: str = _Id
    tagId: str | None = Field(default=None, max_length=MAX_ID_LENGTH)
    name: str = Field(min_length=1, max_length=64)
    suggestedAt: str = _Date


ARGS_BY_NAME: Final[dict[str, type[_Args]]] = {
    f"v1.{cls.__name__}": cls
    for cls in (
        LinkCreated,
        LinkDeleted,
        LinkRestored,
        LinkCompleted,
        LinkUncompleted,
        LinkProcessingStarted,
        LinkProcessingResumed,
        LinkMetadataFetched,
        LinkSummarized,
        LinkProcessingCompleted,
        LinkProcessingFailed,
        LinkProcessingCancelled,
        LinkReprocessRequested,
        TagCreated,
        TagDeleted,
        LinkTagged,
        LinkUntagged,
        TagSuggested,
    )
}
"""Every event name this version accepts, with the model of its args."""

TERMINAL_EVENTS: Final = frozenset(
    {"v1.LinkProcessingCompleted", "v1.LinkProcessingFailed", "v1.LinkProcessingCancelled"}
)
"""Each processing request ends in exactly one of these."""

POKE_EVENTS: Final = frozenset({"v1.LinkCreated", "v1.LinkReprocessRequested"})
"""Events that mean the processor may have new work."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event as a client makes it, before the backend orders it."""

    id: str
    name: str
    args: JSON
    client_id: str
    session_id: str

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "name": self.name,
            "args": self.args,
            "clientId": self.client_id,
            "sessionId": self.session_id,
        }

    @classmethod
    def from_json(cls, data: Any, *, index: int = 0) -> NewEvent:
        """Parse and validate a wire event; raises :class:`InvalidEvent` naming the field."""
        if not isinstance(data, dict):
            raise InvalidEvent(f"events[{index}] must be an object", field=f"events[{index}]")
        for key in ("id", "name", "clientId", "sessionId"):
            value = data.get(key)
            if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
                raise InvalidEvent(
                    f"events[{index}].{key} must be a non-empty string of at most {MAX_ID_LENGTH} characters",
                    event=data.get("name") if isinstance(data.get("name"), str) else None,
                    field=key,
                )
        args = data.get("args")
        if not isinstance(args, dict):
            raise InvalidEvent(
                f"events[{index}].args must be an object", event=data["name"], field="args"
            )
        event = cls(
            id=data["id"],
            name=data["name"],
            args=args,
            client_id=data["clientId"],
            session_id=data["sessionId"],
        )
        validate(event.name, event.args)
        return event


@dataclass(frozen=True, slots=True)
class Event:
    """An event in the org's log: a :class:`NewEvent` with its place in the order."""

    seq: int
    parent: int
    id: str
    name: str
    args: JSON
    client_id: str
    session_id: str

    def to_json(self) -> JSON:
        return {
            "seq": self.seq,
            "parent": self.parent,
            "id": self.id,
            "name": self.name,
            "args": self.args,
            "clientId": self.client_id,
            "sessionId": self.session_id,
        }

    @classmethod
    def from_json(cls, data: JSON) -> Event:
        return cls(
            seq=int(data["seq"]),
            parent=int(data["parent"]),
            id=data["id"],
            name=data["name"],
            args=data["args"],
            client_id=data["clientId"],
            session_id=data["sessionId"],
        )


def validate(name: str, args: JSON) -> None:
    """Check a name and its args against v1; raises :class:`InvalidEvent` naming event and field."""
    model = ARGS_BY_NAME.get(name)
    if model is None:
        raise InvalidEvent(f"unknown event name {name!r}", event=name, field="name")
    try:
        model.model_validate(args)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "args"
        raise InvalidEvent(
            f"{name}: args.{where}: {first['msg']}", event=name, field=f"args.{where}"
        ) from None


def make(name: str, args: JSON, *, client_id: str, session_id: str) -> NewEvent:
    """Build and validate a new event with a fresh id."""
    validate(name, args)
    return NewEvent(id=new_id(), name=name, args=args, client_id=client_id, session_id=session_id)


def parse_push(body: Any) -> tuple[int, list[NewEvent]]:
    """``{"parent": N, "events": [...]}`` from the wire (REST body or socket frame), validated.

    Raises :class:`InvalidEvent` naming the bad event and field, or
    :class:`BatchTooLarge` past the event-count limit.
    """
    if not isinstance(body, dict):
        raise InvalidEvent("body must be an object with parent and events", field="body")
    parent = body.get("parent")
    if not isinstance(parent, int) or isinstance(parent, bool) or parent < 0:
        raise InvalidEvent("parent must be a non-negative integer", field="parent")
    raw = body.get("events")
    if not isinstance(raw, list):
        raise InvalidEvent("events must be a list", field="events")
    if len(raw) > MAX_PUSH_EVENTS:
        raise BatchTooLarge(f"a push holds at most {MAX_PUSH_EVENTS} events, got {len(raw)}")
    return parent, [NewEvent.from_json(item, index=i) for i, item in enumerate(raw)]


def encoded_size(events: list[NewEvent]) -> int:
    """Bytes of a batch as JSON, for the push size limit."""
    return len(json.dumps([e.to_json() for e in events], separators=(",", ":")).encode())


@dataclass(frozen=True, slots=True)
class PushResult:
    """What an accepted push answers: the new head and the seqs given to the batch."""

    head: int
    seqs: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PullResult:
    """Events with seq greater than the asked cursor, oldest first, and the head."""

    events: list[Event]
    head: int
