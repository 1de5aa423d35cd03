"""The model interface the engine drives, and the ring buffer the simple models share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from algobotd.domain import BarBatch


@dataclass(slots=True)
class Prediction:
    """Per-symbol arrays aligned with the batch's symbols.

    ``score`` is the signal (positive = expected to rise); ``confidence`` in [0, 1];
    ``ready`` is False while a symbol is still warming up (its score is NaN).
    """

    score: np.ndarray
    confidence: np.ndarray
    ready: np.ndarray
    weights: dict[str, float]


class Model(Protocol):
    model_id: str
    #: bars of history the model needs before its first prediction
    warmup: int

    def update(self, batch: BarBatch) -> Prediction:
        """Consume one batch (bars <= batch.ts only) and predict for every symbol."""


class CloseWindow:
    """Per-symbol ring buffer of the last ``size`` valid closes, updated in place.

    Stale symbols (valid=False) keep their state: they are not fed a fake bar.
    """

    def __init__(self, size: int, n_symbols: int) -> None:
        self.size = size
        # NaN-filled: a slot not written yet reads as NaN, so `ago` needs no mask
        self.buf = np.full((size, n_symbols), np.nan)
        self.count = np.zeros(n_symbols, dtype=np.int64)  # valid bars seen per symbol
        self._all = np.arange(n_symbols)

    @property
    def all_columns(self) -> np.ndarray:
        """What ``push`` returns as ``cols`` when every symbol reported (compare with ``is``)."""
        return self._all

    def grow(self, n_symbols: int) -> None:
        extra = n_symbols - self.buf.shape[1]
        if extra > 0:
            self.buf = np.hstack([self.buf, np.full((self.size, extra), np.nan)])
            self.count = np.concatenate([self.count, np.zeros(extra, dtype=np.int64)])
            self._all = np.arange(n_symbols)

    def push(self, close: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Store the new closes; returns (cols, evicted) = updated columns and the values they replaced."""
        if valid.all():
            if self._in_step():  # every symbol has the same count: one row, plain slicing
                row = int(self.count[0]) % self.size
                evicted = self.buf[row].copy()
                self.buf[row] = close
                self.count += 1
                return self._all, evicted
            cols = self._all
        else:
            cols = np.flatnonzero(valid)
        rows = self.count[cols] % self.size
        evicted = self.buf[rows, cols]
        self.buf[rows, cols] = close[cols]
        self.count[cols] += 1
        return cols, evicted

    def _in_step(self) -> bool:
        # cheap and exact: counts only ever grow, so equal first/last plus equal min/max means all equal
        c = self.count
        return bool(c.size) and c[0] == c[-1] and c.min() == c.max()

    def ago(self, k: int) -> np.ndarray:
        """The close k valid bars before the latest (k=0 is the latest), NaN when not yet seen.

        With fewer than k+1 values the index wraps onto a slot that was never written (k < size).
        The result is a fresh array (callers may keep it across the next push).
        """
        if self._in_step():
            return self.buf[(int(self.count[0]) - 1 - k) % self.size].copy()
        return self.buf[(self.count - 1 - k) % self.size, self._all]
