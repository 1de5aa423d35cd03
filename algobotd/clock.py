"""Clocks: the only thing besides feed and broker that differs between live and simulated runs."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """Nanoseconds since the epoch, UTC."""


class LiveClock:
    def now(self) -> int:
        return time.time_ns()


class SimClock:
    """Time is whatever the engine says it is: the end of the bar being processed."""

    def __init__(self, start: int = 0) -> None:
        self._now = start

    def now(self) -> int:
        return self._now

    def advance_to(self, ts: int) -> None:
        if ts > self._now:
            self._now = ts
