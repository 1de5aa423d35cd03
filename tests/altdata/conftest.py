"""Shared helpers for the alternative-data tests."""

from __future__ import annotations

import numpy as np

from algobotd.domain import BarBatch

NS = 1_000_000_000
T0 = 1_714_573_800 * NS  # 2024-05-01 14:30:00 UTC


def batch(ts: int, symbols: tuple[str, ...] = ("AAPL", "MSFT"), close: float = 100.0) -> BarBatch:
    n = len(symbols)
    c = np.full(n, close)
    return BarBatch(ts, symbols, c.copy(), c * 1.001, c * 0.999, c.copy(), np.full(n, 1000.0),
                    np.ones(n, dtype=bool), c * 0.9995, c * 1.0005)
