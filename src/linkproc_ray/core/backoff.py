"""The one retry policy: exponential delays with jitter, for every loop that retries (fetches, pulls, pushes, actor calls, reconnects)."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays that double from ``initial`` up to ``maximum``, each drawn from the upper half of its ceiling.

    The jitter spreads retries of many clients apart; the lower bound keeps
    each wait meaningful. Pass an ``rng`` to make the delays reproducible.
    """

    initial: float = 1.0
    maximum: float = 30.0
    factor: float = 2.0

    def ceiling(self, attempt: int) -> float:
        """The longest wait before retry number ``attempt`` (0-based)."""
        return min(self.maximum, self.initial * self.factor**attempt)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait before retry number ``attempt`` (0-based): within [ceiling/2, ceiling]."""
        ceiling = self.ceiling(attempt)
        return (rng or random).uniform(ceiling / 2, ceiling)
