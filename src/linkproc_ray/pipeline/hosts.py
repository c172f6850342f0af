"""Politeness per site: at most a few fetches at once to one host, and a host that asked us to wait is left alone.

An import sends hundreds of links to the same few hosts. The processor takes
a host's slot before a fetch lane, so links waiting for a busy (or slow) host
hold no lane, and the other hosts' links keep flowing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit


def host_of(url: str) -> str:
    """The host name a fetch of ``url`` talks to (lowercase, without port): the unit of politeness."""
    return (urlsplit(url).hostname or "").lower()


class HostGate:
    """At most ``per_host`` fetches at once per host name; after a ``Retry-After``, none to that host until it passes.

    Slots are handed out in arrival order. A host's state is dropped when no
    fetch holds or waits for it, so the gate stays as small as the work in flight.
    """

    def __init__(self, per_host: int = 2) -> None:
        self.per_host = per_host
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._users: Counter[str] = Counter()
        self._resume_at: dict[str, float] = {}
        self.active: Counter[str] = Counter()
        """Fetches holding a slot now, by host: what the politeness test and metrics read."""

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """Hold one of ``host``'s slots, waiting first for a free one and for any pause the host asked for."""
        loop = asyncio.get_running_loop()
        semaphore = self._slots.setdefault(host, asyncio.Semaphore(self.per_host))
        self._users[host] += 1
        try:
            async with semaphore:
                while (delay := self._resume_at.get(host, 0.0) - loop.time()) > 0:
                    await asyncio.sleep(delay)
                self.active[host] += 1
                try:
                    yield
                finally:
                    self.active[host] -= 1
        finally:
            self._users[host] -= 1
            if not self._users[host]:
                del self._users[host], self._slots[host], self.active[host]
                if self._resume_at.get(host, 0.0) <= loop.time():
                    self._resume_at.pop(host, None)

    def pause(self, host: str, seconds: float) -> None:
        """The host answered ``Retry-After: seconds``: no new fetch to it starts before then."""
        resume = asyncio.get_running_loop().time() + seconds
        self._resume_at[host] = max(resume, self._resume_at.get(host, 0.0))
