"""The hibernation gate: an idle org actor closes only between calls, and refuses calls once closing."""

from __future__ import annotations

import asyncio
import time

import pytest

from linkproc_ray.errors import ActorEvicted
from linkproc_ray.sync.hibernation import Hibernation


class Clock:
    """The core's idle clock: it starts when a request starts, as the backend's does."""

    def __init__(self) -> None:
        self.last_activity = time.monotonic()

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def idle_seconds(self) -> float:
        return time.monotonic() - self.last_activity


async def call(gate: Hibernation, clock: Clock, seconds: float) -> bool:
    """A call that outlives the TTL; whether the gate was closing when it finished, still in flight."""
    with gate.serving():
        clock.touch()
        await asyncio.sleep(seconds)
        return gate.closing


def test_a_call_slower_than_the_ttl_finishes_before_the_actor_closes() -> None:
    async def scenario() -> tuple[bool, bool]:
        clock = Clock()
        gate = Hibernation(0.2, clock.idle_seconds)
        slow = asyncio.ensure_future(call(gate, clock, 0.6))
        closed = asyncio.ensure_future(gate.wait_until_idle())
        # Checked inside the call: once it has left the gate, closing is right at any moment.
        closing_during_call = await slow
        await closed
        return closing_during_call, gate.closing

    closing_during_call, closing_after = asyncio.run(scenario())
    assert not closing_during_call, "the TTL passed while the call ran, but it was in flight"
    assert closing_after, "idle past its TTL once the call ended"


def test_once_closing_every_call_is_refused_and_nothing_runs() -> None:
    async def scenario() -> Hibernation:
        clock = Clock()
        gate = Hibernation(0.05, clock.idle_seconds)
        await gate.wait_until_idle()
        return gate

    gate = asyncio.run(scenario())
    assert gate.closing
    with pytest.raises(ActorEvicted, match="hibernating"), gate.serving():
        pytest.fail("a refused call must not run")
    assert gate.in_flight == 0


def test_a_failing_call_is_no_longer_counted() -> None:
    gate = Hibernation(10.0)
    with pytest.raises(ValueError), gate.serving():
        raise ValueError("the call's own error")
    assert gate.in_flight == 0


def test_without_an_idle_clock_the_gate_never_closes() -> None:
    """An actor whose core has not started yet has nothing to close."""

    async def scenario() -> bool:
        gate = Hibernation(0.01)
        try:
            await asyncio.wait_for(gate.wait_until_idle(), 0.1)
        except TimeoutError:
            return gate.closing
        return True

    assert asyncio.run(scenario()) is False
