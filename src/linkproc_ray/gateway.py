"""The seam between the HTTP layer and the per-org backends.

The Serve app only sees :class:`Gateway`; the Ray adapter implements it with
named actors, :class:`LocalGateway` with in-process backends (tests, tools).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from .events import NewEvent, PullResult, PushResult
from .store import EventStore
from .sync_backend import Poke, SyncBackend
from .types import JSON


class OrgBackend(Protocol):
    """The calls the ingress makes on one org's sync backend."""

    async def push(self, parent: int, events: list[NewEvent]) -> PushResult: ...

    async def pull(self, after: int = 0, limit: int = 1000, wait: float = 0.0) -> PullResult: ...

    async def append(self, names_and_args: list[tuple[str, JSON]]) -> PushResult: ...

    async def create_link(self, url: str, domain: str, source: str | None, link_id: str) -> tuple[JSON, bool]: ...

    async def get_link(self, link_id: str) -> JSON | None: ...

    async def list_links(self, **kwargs: Any) -> tuple[list[JSON], int | None]: ...


class Gateway(Protocol):
    """Finds (or wakes) the backend of an org."""

    async def backend(self, org: str) -> OrgBackend: ...


class LocalGateway:
    """In-process backends, one per org, under ``data_dir/orgs/<org>/backend.sqlite``."""

    def __init__(self, data_dir: Path | None, *, poke_for: Callable[[str], Poke | None] = lambda org: None) -> None:
        self.data_dir = data_dir
        self._poke_for = poke_for
        self._backends: dict[str, SyncBackend] = {}
        self._lock = asyncio.Lock()

    async def backend(self, org: str) -> SyncBackend:
        async with self._lock:
            if org not in self._backends:
                path: str | Path = ":memory:" if self.data_dir is None else self.data_dir / "orgs" / org / "backend.sqlite"
                backend = SyncBackend(EventStore(path), poke=self._poke_for(org))
                await backend.start()
                self._backends[org] = backend
            return self._backends[org]

    async def close(self) -> None:
        for backend in self._backends.values():
            await backend.close()
        self._backends.clear()
