"""Rolling window of the last ``length`` feature vectors per symbol, for the sequence models.

Each row is written twice, at ``slot`` and ``slot + length`` of a ``2 * length`` ring, so the
latest ``length`` rows are always one contiguous slice: ``window()`` is a zero-copy view
``[symbols, length, features]`` (oldest first), whatever the write position. Each batch
writes one row per symbol (O(symbols x features)); the history is never copied.

Time runs in batches: a stale symbol's row repeats its frozen features and ``mask`` is
False there, so a model can tell a fresh bar from a held one.
"""

from __future__ import annotations

import numpy as np


class SequenceBuffer:
    def __init__(self, length: int, n_symbols: int, n_features: int, dtype: type[np.floating] = np.float64) -> None:
        self.length = length
        self.buf = np.full((n_symbols, 2 * length, n_features), np.nan, dtype=dtype)
        self.fresh = np.zeros((n_symbols, 2 * length), dtype=bool)
        self.writes = 0  # batches written

    def grow(self, n_symbols: int) -> None:
        extra = n_symbols - self.buf.shape[0]
        if extra > 0:
            shape = (extra, *self.buf.shape[1:])
            self.buf = np.concatenate([self.buf, np.full(shape, np.nan, dtype=self.buf.dtype)])
            self.fresh = np.concatenate([self.fresh, np.zeros((extra, 2 * self.length), dtype=bool)])

    def push(self, rows: np.ndarray, fresh: np.ndarray) -> None:
        """Append one batch: ``rows[n_symbols, n_features]`` and which symbols had a new bar."""
        slot = self.writes % self.length
        n = rows.shape[0]
        self.buf[:n, slot] = rows
        self.buf[:n, slot + self.length] = self.buf[:n, slot]  # already cast: a plain copy
        self.fresh[:n, slot] = fresh
        self.fresh[:n, slot + self.length] = fresh
        self.writes += 1

    def _start(self) -> int:
        return self.writes % self.length  # (latest slot + 1): the oldest row of the window

    def window(self) -> np.ndarray:
        """View ``[symbols, length, features]``, oldest first; NaN rows before ``length`` batches."""
        s = self._start()
        return self.buf[:, s: s + self.length]

    def mask(self) -> np.ndarray:
        """View ``[symbols, length]``: True where the row came from a fresh bar of that symbol."""
        s = self._start()
        return self.fresh[:, s: s + self.length]

    @property
    def nbytes(self) -> int:
        return self.buf.nbytes + self.fresh.nbytes
