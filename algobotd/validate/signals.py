"""Labels, causal model scores and purged splits shared by walk-forward and tune.

Label of bar t = the simple return from its close to the close ``horizon`` bars later; it
*ends* at ``ts[t + horizon]``. A training sample is usable for a test block only if its label
ends strictly before the block's first bar (purging); after a test block, ``embargo`` bars are
also kept out of training (serial correlation leaks backwards otherwise).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np

from algobotd.config import Config, ModelConfig
from algobotd.domain import BarBatch
from algobotd.models.baseline import make_model


def close_matrix(batches: list[BarBatch]) -> tuple[np.ndarray, np.ndarray]:
    """(ts [n], close [n, k]) with NaN where a symbol did not report."""
    ts = np.array([b.ts for b in batches], dtype=np.int64)
    close = np.array([np.where(b.valid, b.close, np.nan) for b in batches], dtype=float)
    return ts, close


def forward_returns(close: np.ndarray, horizon: int = 1) -> np.ndarray:
    """fwd[t] = close[t + h] / close[t] - 1; NaN for the last h rows (their label is unknown)."""
    fwd = np.full_like(close, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        fwd[:-horizon] = close[horizon:] / close[:-horizon] - 1.0
    return fwd


def label_end(ts: np.ndarray, idx: np.ndarray, horizon: int) -> np.ndarray:
    """Timestamp at which the label of each bar in ``idx`` is known (int64 max past the data)."""
    j = idx + horizon
    out = np.full(idx.shape, np.iinfo(np.int64).max, dtype=np.int64)
    ok = j < len(ts)
    out[ok] = ts[j[ok]]
    return out


def model_scores(model_cfg: ModelConfig, batches: Iterable[BarBatch], n_symbols: int) -> np.ndarray:
    """Scores of the model run bar by bar (each score sees bars <= its own only); NaN until ready."""
    model = make_model(model_cfg, n_symbols)
    rows = []
    for b in batches:
        p = model.update(b)
        rows.append(np.where(p.ready, p.score[:n_symbols], np.nan))
    return np.array(rows, dtype=float)


def with_model(cfg: Config, **params: object) -> Config:
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **params))


def long_short_returns(scores: np.ndarray, fwd: np.ndarray) -> np.ndarray:
    """Per-bar return of a dollar-neutral portfolio weighted by demeaned cross-sectional ranks
    (sum |w| = 1): the signal's own P&L, before costs, used for Sharpe / DSR of a trial."""
    out = np.full(scores.shape[0], np.nan)
    for t in range(scores.shape[0]):
        m = np.isfinite(scores[t]) & np.isfinite(fwd[t])
        if m.sum() < 2:
            continue
        r = np.argsort(np.argsort(scores[t, m])).astype(float)
        w = r - r.mean()
        s = np.abs(w).sum()
        if s > 0:
            out[t] = float((w / s) @ fwd[t, m])
    return out


def purged_kfold(n: int, k: int, horizon: int, purge: int, embargo: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """K contiguous test blocks over ``n`` bars; training = every other bar whose label window
    [t, t + horizon] does not reach into the test block (nor within ``purge`` bars before it),
    and which is not within ``embargo`` bars after the test block (López de Prado, AFML ch. 7)."""
    bounds = np.linspace(0, n, k + 1).astype(int)
    out = []
    idx = np.arange(n)
    for a, b in zip(bounds[:-1], bounds[1:]):
        test = idx[a:b]
        before = idx[: max(0, a - purge - horizon)]  # label end t + h < a - purge: strictly before the block
        after = idx[min(n, b + embargo) :]
        out.append((np.concatenate([before, after]), test))
    return out
