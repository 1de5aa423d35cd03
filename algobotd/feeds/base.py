"""What the engine needs from a market-data feed (sim, replay, Alpaca, IB)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from algobotd.domain import BarBatch


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a restarted daemon left off: the last stored bar interval and its closes."""

    last_ts: int
    symbols: tuple[str, ...]
    closes: np.ndarray  # aligned with symbols; NaN where unknown


class Feed(Protocol):
    symbols: tuple[str, ...]
    bar_seconds: int

    @property
    def connected(self) -> bool: ...

    async def history(self, n_bars: int, resume: ResumePoint | None) -> list[BarBatch]:
        """Warm-up: up to ``n_bars`` batches strictly before the first live batch."""

    def batches(self, resume: ResumePoint | None) -> AsyncIterator[BarBatch]:
        """Live batches, in time order, starting after ``resume.last_ts`` when given.

        Pacing (real time, a multiplier, or as fast as possible) is the feed's business.
        The iterator ends when the feed has no more data (replay) and never for live feeds.
        """

    async def close(self) -> None: ...
