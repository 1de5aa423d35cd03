"""Training labels over a panel of closes ``[T, N]`` (time x symbol), with their end times.

Every label at time ``t`` uses closes after ``t`` only (it is the *target*), while the
volatility that normalises it uses returns up to ``t`` only, so the label itself never
leaks the future into a feature. ``end[t, i]`` is the index of the last bar the label looks
at (``t + horizon`` for forward returns, the first barrier touch for triple-barrier labels):
purged splits drop every training sample whose ``[t, end]`` window reaches into a test window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class Labels:
    y: np.ndarray  # [T, N] float, NaN where unknown (end beyond the data, missing closes)
    end: np.ndarray  # [T, N] int, index of the last bar the label depends on
    horizon: int
    kind: str


def ewma_vol(close: np.ndarray, span: int) -> np.ndarray:
    """EWMA standard deviation of 1-bar log returns known at each ``t`` (NaN before 2 returns)."""
    r = np.full(close.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        r[1:] = np.log(close[1:] / close[:-1])
    alpha = 2.0 / (span + 1.0)
    out = np.full(close.shape, np.nan)
    var = np.full(close.shape[1], np.nan)
    seen = np.zeros(close.shape[1], dtype=np.int64)
    for t in range(close.shape[0]):  # O(T) numpy steps over all symbols; T is bars, not samples
        x = r[t]
        ok = np.isfinite(x)
        first = ok & ~np.isfinite(var)
        var = np.where(first, x * x, var)
        upd = ok & ~first
        var = np.where(upd, (1 - alpha) * var + alpha * x * x, var)
        seen += ok
        out[t] = np.where(seen >= 2, np.sqrt(var), np.nan)
    return out


def forward_return_labels(close: np.ndarray, horizon: int, vol_span: int = 60,
                          cs_zscore: bool = False) -> Labels:
    """``log(C[t+h] / C[t]) / (sigma_t * sqrt(h))``, optionally z-scored across symbols per ``t``."""
    if horizon < 1:
        raise ValueError("horizon must be >= 1")
    T, N = close.shape
    y = np.full((T, N), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        y[: T - horizon] = np.log(close[horizon:] / close[: T - horizon])
        sigma = ewma_vol(close, vol_span)
        y = y / (sigma * np.sqrt(horizon))
    y[~np.isfinite(y)] = np.nan
    if cs_zscore:
        y = cross_sectional_z(y)
    end = np.broadcast_to(np.arange(T)[:, None] + horizon, (T, N)).copy()
    return Labels(y, end, horizon, "return_z" if cs_zscore else "return")


def cross_sectional_z(a: np.ndarray) -> np.ndarray:
    """Per row: (a - mean) / std over the finite entries; rows with < 2 finite entries -> NaN."""
    ok = np.isfinite(a)
    n = ok.sum(axis=1, keepdims=True)
    x = np.where(ok, a, 0.0)
    mean = x.sum(axis=1, keepdims=True) / np.maximum(n, 1)
    var = (np.where(ok, (a - mean) ** 2, 0.0)).sum(axis=1, keepdims=True) / np.maximum(n - 1, 1)
    sd = np.sqrt(var)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (a - mean) / sd
    z[~ok | (n < 2) | ~(sd > 0)] = np.nan
    return z


def triple_barrier_labels(close: np.ndarray, horizon: int, pt_mult: float = 2.0, sl_mult: float = 2.0,
                          vol_span: int = 60) -> Labels:
    """+1 / -1 when the profit-take / stop-loss barrier (multiples of EWMA vol x sqrt(h)) is hit
    first, else the sign-free vertical-barrier return scaled into (-1, 1); ``end`` = touch bar."""
    T, N = close.shape
    sigma = ewma_vol(close, vol_span) * np.sqrt(horizon)
    y = np.full((T, N), np.nan)
    end = np.broadcast_to(np.arange(T)[:, None] + horizon, (T, N)).copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        for t in range(T - horizon):
            base, s = close[t], sigma[t]
            live = np.isfinite(base) & np.isfinite(s) & (s > 0)
            out = np.full(N, np.nan)
            done = ~live
            for k in range(1, horizon + 1):  # h is a few bars: loop over steps, vectorised over symbols
                r = np.log(close[t + k] / base)
                up = ~done & (r >= pt_mult * s)
                dn = ~done & (r <= -sl_mult * s)
                out[up], out[dn] = 1.0, -1.0
                end[t, up | dn] = t + k
                done |= up | dn
                if k == horizon:
                    rest = ~done & np.isfinite(r)
                    out[rest] = np.tanh(r[rest] / s[rest])  # vertical barrier: bounded, keeps the sign
            y[t] = out
    return Labels(y, end, horizon, "triple_barrier")


def make_labels(close: np.ndarray, kind: str, horizon: int, vol_span: int = 60, cs_zscore: bool = False,
                pt_mult: float = 2.0, sl_mult: float = 2.0) -> Labels:
    if kind == "triple_barrier":
        lab = triple_barrier_labels(close, horizon, pt_mult, sl_mult, vol_span)
        if cs_zscore:
            lab.y = cross_sectional_z(lab.y)
        return lab
    return forward_return_labels(close, horizon, vol_span, cs_zscore)
