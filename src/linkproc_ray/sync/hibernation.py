"""When an idle org actor may exit: idle for its TTL with no call in flight, and then it admits none.

An actor's idle clock starts when a request starts, so a request slower than
the TTL (a commit on a loaded node) could see its store closed under it:
``benchmarks/churn.py``, with a 2 s TTL on two busy cores, got a 500 from a
save whose read-back hit the closed store. The gate counts the calls in
flight, and closes only between calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from linkproc_ray.errors import ActorEvicted


class Hibernation:
    """Admits calls until the actor has been idle for ``idle_ttl`` with none in flight.

    :param idle_seconds: how long the actor's core has had nothing to do
        (it counts requests, followers and its own background work).
    """

    def __init__(self, idle_ttl: float, idle_seconds: Callable[[], float] | None = None) -> None:
        self.idle_ttl = idle_ttl
        self.idle_seconds = idle_seconds
        self.closing = False
        self.in_flight = 0

    @contextmanager
    def serving(self) -> Iterator[None]:
        """One call: refused once the actor is closing, counted while it runs."""
        if self.closing:
            raise ActorEvicted("actor is hibernating")
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    def _idle(self) -> bool:
        return self.in_flight == 0 and self.idle_seconds is not None and self.idle_seconds() >= self.idle_ttl

    async def wait_until_idle(self) -> None:
        """Return once the actor is idle; from then on every call is refused (the caller looks it up anew)."""
        interval = min(5.0, self.idle_ttl / 4)
        while not self._idle():
            await asyncio.sleep(interval)
        # No await between the check and this: on the actor's one event loop no call starts in between.
        self.closing = True
