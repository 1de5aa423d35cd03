"""Training panels built by running the live feature engine over history (no train/serve skew).

``panel_from_batches`` feeds the same :class:`FeatureEngine` the daemon uses one batch at a
time and records ``X`` after each batch, so a training row at time ``t`` is exactly the row
the live model sees after batch ``t``. The baseline (momentum) is run alongside as the
yardstick. Sequence windows are gathered from the panel on demand (never materialised:
500 symbols x 500 days x 60 steps x 85 features would not fit in memory).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from algobotd.config import FeaturesConfig, ModelConfig
from algobotd.domain import BarBatch
from algobotd.features.engine import FeatureEngine
from algobotd.models.baseline import MomentumModel


@dataclass(slots=True)
class Panel:
    ts: np.ndarray  # [T] int ns
    symbols: tuple[str, ...]
    X: np.ndarray  # [T, N, F] float32, features after batch t
    close: np.ndarray  # [T, N], NaN where the symbol had no valid bar
    ready: np.ndarray  # [T, N] feature engine warmed up
    baseline: np.ndarray  # [T, N] momentum baseline score (NaN until ready)
    feature_names: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        T, N, F = self.X.shape
        return T, N, F


def panel_from_batches(batches: Iterable[BarBatch], features: FeaturesConfig | None = None,
                       baseline_cfg: ModelConfig | None = None) -> Panel:
    fe = FeatureEngine(features or FeaturesConfig())
    base: MomentumModel | None = None
    rows_x: list[np.ndarray] = []
    rows_c: list[np.ndarray] = []
    rows_r: list[np.ndarray] = []
    rows_b: list[np.ndarray] = []
    ts: list[int] = []
    for b in batches:
        fe.update(b)
        n = len(fe.symbols)
        if base is None:
            base = MomentumModel(baseline_cfg or ModelConfig(), n)
        pos = np.array([fe.symbols[s] for s in b.symbols], dtype=np.int64)
        close = np.full(n, np.nan)
        close[pos] = np.where(b.valid, b.close, np.nan)
        pred = base.update(_reordered(b, pos, n))
        rows_x.append(fe.X.astype(np.float32))
        rows_c.append(close)
        rows_r.append(fe.ready.copy())
        rows_b.append(np.where(pred.ready, pred.score, np.nan))
        ts.append(b.ts)
    N = len(fe.symbols)
    pad = lambda a, fill: np.concatenate([a, np.full((N - a.shape[0], *a.shape[1:]), fill, a.dtype)])  # noqa: E731
    return Panel(np.array(ts, dtype=np.int64), tuple(fe.symbols.symbols),
                 np.stack([pad(x, np.nan) for x in rows_x]), np.stack([pad(c, np.nan) for c in rows_c]),
                 np.stack([pad(r, False) for r in rows_r]), np.stack([pad(s, np.nan) for s in rows_b]),
                 tuple(fe.names))


def _reordered(b: BarBatch, pos: np.ndarray, n: int) -> BarBatch:
    """The batch in feature-engine symbol order (the baseline indexes symbols positionally)."""
    if len(b) == n and np.array_equal(pos, np.arange(n)):
        return b

    def put(a: np.ndarray, fill: float = np.nan) -> np.ndarray:
        out = np.full(n, fill)
        out[pos] = a
        return out

    valid = np.zeros(n, dtype=bool)
    valid[pos] = b.valid
    return BarBatch(b.ts, tuple(f"_{i}" for i in range(n)), put(b.open), put(b.high), put(b.low), put(b.close),
                    put(b.volume), valid, put(b.bid), put(b.ask))


def sample_index(panel: Panel, y: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(t, i) of the usable samples at the given times: features ready and a finite label."""
    ok = panel.ready[times] & np.isfinite(y[times])
    tt, ii = np.nonzero(ok)
    return times[tt], ii


def windows(X: np.ndarray, t: np.ndarray, i: np.ndarray, length: int) -> np.ndarray:
    """Gather ``[len(t), length, F]`` windows ending at ``t`` (oldest first); NaN before time 0."""
    steps = t[:, None] + np.arange(-length + 1, 1)[None, :]
    before = steps < 0
    out = X[np.maximum(steps, 0), i[:, None]]
    if before.any():
        out[before] = np.nan
    return out
