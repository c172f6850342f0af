"""In-process org backends behind the :class:`~linkproc_ray.sync.ports.Gateway` seam (tests, tools).

The Ray adapter implements the same seam with named actors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from linkproc_ray.core.store import EventStore
from linkproc_ray.sync.backend import Poke, SyncBackend


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
                path: str | Path = (
                    ":memory:" if self.data_dir is None else self.data_dir / "orgs" / org / "backend.sqlite"
                )
                backend = SyncBackend(EventStore(path), poke=self._poke_for(org))
                await backend.start()
                self._backends[org] = backend
            return self._backends[org]

    async def close(self) -> None:
        for backend in self._backends.values():
            await backend.close()
        self._backends.clear()
