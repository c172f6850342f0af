"""Small builders of valid v1 events, so tests say only what matters to them."""

from __future__ import annotations

from linkproc_ray.core.events import NewEvent, make
from linkproc_ray.core.types import JSON

CLIENT = "test-client"
SESSION = "test-session"


def event(event_name: str, /, **args: object) -> NewEvent:
    return make(event_name, dict(args), client_id=CLIENT, session_id=SESSION)


def link_created(link_id: str, url: str | None = None, **extra: object) -> NewEvent:
    url = url or f"https://example.com/{link_id}"
    return event("v1.LinkCreated", id=link_id, url=url, domain="example.com", createdAt="2026-01-01T00:00:00Z", **extra)


def started(link_id: str) -> NewEvent:
    return event("v1.LinkProcessingStarted", linkId=link_id, updatedAt="2026-01-01T00:00:01Z")


def completed(link_id: str) -> NewEvent:
    return event("v1.LinkProcessingCompleted", linkId=link_id, updatedAt="2026-01-01T00:00:02Z")


def as_json(e: NewEvent) -> JSON:
    return e.to_json()
