"""The seams of the sync layer: what callers need from an org's backend, and how they find it.

The ingress sees :class:`Gateway` and :class:`OrgBackend`; the processor
:class:`BackendPort`. The Ray adapter implements them with named actors,
:class:`~linkproc_ray.api.gateway.LocalGateway` with in-process backends.
"""

from __future__ import annotations

from typing import Any, Protocol

from linkproc_ray.core.bookmarks import NewBookmark
from linkproc_ray.core.events import EventArgs, NewEvent, PullResult, PushResult
from linkproc_ray.core.limits import DEFAULT_PULL_LIMIT
from linkproc_ray.core.types import JSON


class BackendPort(Protocol):
    """What the processor needs from its org's sync backend."""

    async def push(self, parent: int, events: list[NewEvent]) -> PushResult: ...

    async def pull(self, after: int = 0, limit: int = DEFAULT_PULL_LIMIT, wait: float = 0.0) -> PullResult: ...


class OrgBackend(BackendPort, Protocol):
    """The calls the ingress makes on one org's sync backend."""

    async def append(self, events: list[EventArgs]) -> PushResult: ...

    async def create_link(self, url: str, domain: str, source: str | None, link_id: str) -> tuple[JSON, bool]: ...

    async def import_links(self, bookmarks: list[NewBookmark]) -> list[JSON]: ...

    async def get_link(self, link_id: str) -> JSON | None: ...

    async def list_links(self, **kwargs: Any) -> tuple[list[JSON], int | None]: ...

    async def tag_link(self, link_id: str, name: str) -> JSON: ...

    async def untag_link(self, link_id: str, name: str) -> JSON: ...

    async def dismiss_suggestion(self, link_id: str, name: str) -> JSON: ...

    async def search_links(self, query: str, limit: int, offset: int) -> list[JSON]: ...

    async def export_links(self) -> list[JSON]: ...

    async def link_history(self, link_id: str) -> list[JSON]: ...


class Gateway(Protocol):
    """Finds (or wakes) the backend of an org."""

    async def backend(self, org: str) -> OrgBackend: ...
