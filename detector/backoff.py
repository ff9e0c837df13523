"""Exponential backoff with jitter, shared by stream reconnects and report delivery.

Jitter spreads retries of many workers that lost the same network or API at the same
moment, so they do not all come back in lock-step and knock it over again.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays that grow ``multiplier``-fold from ``initial_s`` up to ``max_s``.

    Each delay is drawn uniformly from ``[(1 - jitter) * d, d]`` where ``d`` is the
    un-jittered delay, so a delay never exceeds ``max_s``. ``reset()`` after a success.
    """

    def __init__(
        self,
        initial_s: float = 1.0,
        max_s: float = 60.0,
        *,
        multiplier: float = 2.0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < initial_s <= max_s:
            raise ValueError("backoff needs 0 < initial_s <= max_s")
        if multiplier < 1:
            raise ValueError("backoff multiplier must be at least 1")
        if not 0 <= jitter <= 1:
            raise ValueError("backoff jitter must be within 0-1")
        self.initial_s = initial_s
        self.max_s = max_s
        self.multiplier = multiplier
        self.jitter = jitter
        self._rng = rng or random.Random()
        self.attempts = 0
        self._growth = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        ceiling = min(self.max_s, self.initial_s * self.multiplier**self._growth)
        if ceiling < self.max_s:  # stop growing at the cap: no float overflow after days down
            self._growth += 1
        self.attempts += 1
        return ceiling * (1 - self.jitter * self._rng.random())

    def reset(self) -> None:
        """Start again from ``initial_s`` (after a success)."""
        self.attempts = 0
        self._growth = 0

    def __repr__(self) -> str:
        return (
            f"Backoff(initial_s={self.initial_s}, max_s={self.max_s}, "
            f"multiplier={self.multiplier}, jitter={self.jitter}, attempts={self.attempts})"
        )
