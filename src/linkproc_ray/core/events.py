"""The v1 event vocabulary: envelopes, names and validated args.

Events are immutable facts. A name never changes meaning: new optional args
may be added, anything breaking becomes a new name (``v2.…``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from linkproc_ray.core.limits import MAX_ID_LENGTH, MAX_PUSH_EVENTS, MAX_SEQ, MAX_URL_LENGTH
from linkproc_ray.core.types import JSON
from linkproc_ray.errors import BatchTooLarge, InvalidEvent, MalformedBody


def utc_now() -> str:
    """The current time as the ISO-8601 UTC string events carry."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    """A fresh unique id for an event or an entity made by this process."""
    return uuid.uuid4().hex


class EventArgs(BaseModel):
    """The validated args of one event name; ``NAME`` is that name on the wire, defined only here."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    NAME: ClassVar[str]

    def to_json(self) -> JSON:
        """The args as they travel and are stored (absent optionals are left out)."""
        return self.model_dump(exclude_none=True)

    @classmethod
    def of(cls, event: Event | NewEvent) -> Self:
        """The typed args of a stored or new event of this name."""
        if event.name != cls.NAME:
            raise InvalidEvent(f"{event.name} is not {cls.NAME}", event=event.name, field="name")
        return cls.model_validate(event.args)


_Id = Field(min_length=1, max_length=MAX_ID_LENGTH)
_Date = Field(min_length=1, max_length=64)


class LinkCreated(EventArgs):
    NAME: ClassVar[str] = "v1.LinkCreated"

    id: str = _Id
    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH)
    domain: str = Field(max_length=300)
    createdAt: str = _Date
    source: str | None = Field(default=None, max_length=100)


class LinkDeleted(EventArgs):
    NAME: ClassVar[str] = "v1.LinkDeleted"

    id: str = _Id
    deletedAt: str = _Date


class LinkRestored(EventArgs):
    NAME: ClassVar[str] = "v1.LinkRestored"

    id: str = _Id


class LinkCompleted(EventArgs):
    NAME: ClassVar[str] = "v1.LinkCompleted"

    id: str = _Id
    completedAt: str = _Date


class LinkUncompleted(EventArgs):
    NAME: ClassVar[str] = "v1.LinkUncompleted"

    id: str = _Id


class LinkProcessingStarted(EventArgs):
    NAME: ClassVar[str] = "v1.LinkProcessingStarted"

    linkId: str = _Id
    updatedAt: str = _Date


class LinkProcessingResumed(EventArgs):
    NAME: ClassVar[str] = "v1.LinkProcessingResumed"

    linkId: str = _Id
    attempt: int = Field(ge=2, le=1000)
    updatedAt: str = _Date


class LinkMetadataFetched(EventArgs):
    NAME: ClassVar[str] = "v1.LinkMetadataFetched"

    id: str = _Id
    linkId: str = _Id
    title: str | None = Field(default=None, max_length=1000)
    description: str | None = Field(default=None, max_length=4000)
    image: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    favicon: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    siteName: str | None = Field(default=None, max_length=300)
    canonicalUrl: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    fetchedAt: str = _Date


class LinkSummarized(EventArgs):
    NAME: ClassVar[str] = "v1.LinkSummarized"

    id: str = _Id
    linkId: str = _Id
    summary: str = Field(min_length=1, max_length=4000)
    model: str = Field(min_length=1, max_length=200)
    summarizedAt: str = _Date


class LinkProcessingCompleted(EventArgs):
    NAME: ClassVar[str] = "v1.LinkProcessingCompleted"

    linkId: str = _Id
    updatedAt: str = _Date


class LinkProcessingFailed(EventArgs):
    NAME: ClassVar[str] = "v1.LinkProcessingFailed"

    linkId: str = _Id
    error: str = Field(min_length=1, max_length=200)
    updatedAt: str = _Date


class LinkProcessingCancelled(EventArgs):
    NAME: ClassVar[str] = "v1.LinkProcessingCancelled"

    linkId: str = _Id
    updatedAt: str = _Date


class LinkReprocessRequested(EventArgs):
    NAME: ClassVar[str] = "v1.LinkReprocessRequested"

    linkId: str = _Id
    requestedAt: str = _Date


class TagCreated(EventArgs):
    NAME: ClassVar[str] = "v1.TagCreated"

    id: str = _Id
    name: str = Field(min_length=1, max_length=64)
    createdAt: str = _Date


class TagDeleted(EventArgs):
    NAME: ClassVar[str] = "v1.TagDeleted"

    id: str = _Id
    deletedAt: str = _Date


class LinkTagged(EventArgs):
    NAME: ClassVar[str] = "v1.LinkTagged"

    linkId: str = _Id
    tagId: str = _Id
    taggedAt: str | None = Field(default=None, max_length=64)


class LinkUntagged(EventArgs):
    NAME: ClassVar[str] = "v1.LinkUntagged"

    linkId: str = _Id
    tagId: str = _Id


class TagSuggested(EventArgs):
    NAME: ClassVar[str] = "v1.TagSuggested"

    id: str = _Id
    linkId: str = _Id
    tagId: str | None = Field(default=None, max_length=MAX_ID_LENGTH)
    name: str = Field(min_length=1, max_length=64)
    suggestedAt: str = _Date


class TagSuggestionDismissed(EventArgs):
    """A person dismissed a tag the summarizer suggested for a link; a later run may suggest it again."""

    NAME: ClassVar[str] = "v1.TagSuggestionDismissed"

    linkId: str = _Id
    name: str = Field(min_length=1, max_length=64)
    dismissedAt: str = _Date


ARGS_BY_NAME: Final[dict[str, type[EventArgs]]] = {
    cls.NAME: cls
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
        TagSuggestionDismissed,
    )
}
"""Every event name this version accepts, with the model of its args."""

TERMINAL_EVENTS: Final = frozenset(
    {LinkProcessingCompleted.NAME, LinkProcessingFailed.NAME, LinkProcessingCancelled.NAME}
)
"""Each processing request ends in exactly one of these."""

POKE_EVENTS: Final = frozenset({LinkCreated.NAME, LinkReprocessRequested.NAME})
"""Events that mean the processor may have new work."""

LINK_NAMED_BY_ID: Final = frozenset(
    {LinkCreated.NAME, LinkDeleted.NAME, LinkRestored.NAME, LinkCompleted.NAME, LinkUncompleted.NAME}
)
"""Events whose ``id`` is the link's own; every other event about a link names it ``linkId``."""


def link_of(event: Event | NewEvent) -> str | None:
    """The id of the link an event is about, or ``None`` for tag events: a link's state changes only by these."""
    key = "id" if event.name in LINK_NAMED_BY_ID else "linkId"
    link_id = event.args.get(key)
    return link_id if isinstance(link_id, str) else None


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
    def of(cls, args: EventArgs, *, client_id: str, session_id: str) -> NewEvent:
        """A new event with a fresh id from typed args (valid by construction)."""
        return cls(id=new_id(), name=args.NAME, args=args.to_json(), client_id=client_id, session_id=session_id)

    def at(self, seq: int, parent: int) -> Event:
        """This event in the log: given ``seq`` by a backend that had ``parent`` as its head."""
        return Event(
            seq=seq,
            parent=parent,
            id=self.id,
            name=self.name,
            args=self.args,
            client_id=self.client_id,
            session_id=self.session_id,
        )

    @classmethod
    def from_json(cls, data: Any, *, index: int = 0) -> NewEvent:
        """Parse and validate a wire event; raises :class:`InvalidEvent` naming the field."""
        if not isinstance(data, dict):
            raise InvalidEvent(f"events[{index}] must be an object", field=f"events[{index}]")
        for key in ("id", "name", "clientId", "sessionId"):
            value = data.get(key)
            if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH or not is_unicode(value):
                raise InvalidEvent(
                    f"events[{index}].{key} must be a non-empty string of at most {MAX_ID_LENGTH} characters"
                    " (valid Unicode: no lone surrogates)",
                    event=data.get("name") if isinstance(data.get("name"), str) else None,
                    field=key,
                )
        args = data.get("args")
        if not isinstance(args, dict):
            raise InvalidEvent(f"events[{index}].args must be an object", event=data["name"], field="args")
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


def is_unicode(text: str) -> bool:
    """Whether ``text`` can be stored as UTF-8: JSON's ``\\ud800`` escapes make lone surrogates SQLite refuses."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
        raise InvalidEvent(f"{name}: args.{where}: {first['msg']}", event=name, field=f"args.{where}") from None


def make(name: str, args: JSON, *, client_id: str, session_id: str) -> NewEvent:
    """Build and validate a new event with a fresh id from a name and plain args (the SDK's generic commit)."""
    validate(name, args)
    return NewEvent(id=new_id(), name=name, args=args, client_id=client_id, session_id=session_id)


def parse_push(body: Any) -> tuple[int, list[NewEvent]]:
    """``{"parent": N, "events": [...]}`` from the wire (REST body or socket frame), validated.

    Raises :class:`InvalidEvent` naming the bad event and field, or
    :class:`BatchTooLarge` past the event-count limit.
    """
    if not isinstance(body, dict):
        raise MalformedBody("body must be an object with parent and events")
    parent = body.get("parent")
    if isinstance(parent, float) and parent.is_integer():
        # JSON has one number type: 7.0 is the integer 7 (JSON Schema agrees), whatever wrote it.
        parent = int(parent)
    if not isinstance(parent, int) or isinstance(parent, bool) or not 0 <= parent <= MAX_SEQ:
        raise InvalidEvent(f"parent must be an integer from 0 to {MAX_SEQ}", field="parent")
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
