"""Exponential backoff with jitter for sources that fail or rate-limit us."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double after each consecutive failure, capped, with "equal jitter".

    The n-th delay lies in ``[d/2, d]`` with ``d = min(maximum, initial * 2**n)``: never zero
    (a tight retry loop would hammer a rate limit), yet spread out so that restarted producers
    do not retry in lock-step.
    """

    def __init__(
        self, initial_s: float, maximum_s: float, rng: random.Random | None = None
    ) -> None:
        self.initial_s = initial_s
        self.maximum_s = max(initial_s, maximum_s)
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """Count one more failure and return how long to wait before retrying."""
        d = min(self.maximum_s, self.initial_s * float(2 ** min(self.failures, 30)))
        self.failures += 1
        return float(d / 2 + self._rng.uniform(0, d / 2))

    def reset(self) -> None:
        """A success: start again from the initial delay."""
        self.failures = 0
