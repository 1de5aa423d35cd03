"""Out-of-sample skill of a score panel against a label panel ``[T, N]``.

IC is computed per date across symbols (the cross-sectional IC that matters for ranking a
universe). With fewer than ``min_cross`` symbols (a real data set of one or two indices)
a per-date IC does not exist, so the IC is computed on blocks of ``block`` consecutive dates,
pooled across symbols (a time-series IC); ICIR is then mean / std of those block ICs.
Blocks are long (252 bars) on purpose: demeaning within a short block biases the IC of any
level-like score (a random walk's momentum scores IC -0.18 on 21-bar blocks, -0.01 on 252).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def _corr_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ok = np.isfinite(a) & np.isfinite(b)
    n = ok.sum(axis=1)
    a0, b0 = np.where(ok, a, 0.0), np.where(ok, b, 0.0)
    ma = a0.sum(axis=1) / np.maximum(n, 1)
    mb = b0.sum(axis=1) / np.maximum(n, 1)
    da, db = np.where(ok, a - ma[:, None], 0.0), np.where(ok, b - mb[:, None], 0.0)
    num = (da * db).sum(axis=1)
    den = np.sqrt((da * da).sum(axis=1) * (db * db).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = num / den
    c[(n < 3) | ~(den > 0)] = np.nan
    return c


def _rank_rows(a: np.ndarray) -> np.ndarray:
    out = np.full(a.shape, np.nan)
    for t in range(a.shape[0]):
        ok = np.isfinite(a[t])
        if ok.sum() >= 2:
            out[t, ok] = rankdata(a[t, ok])
    return out


def ic_series(score: np.ndarray, label: np.ndarray, rank: bool = False, min_cross: int = 5,
              block: int = 252) -> np.ndarray:
    """One IC per date (cross-section) or per block of dates (time series); NaN-free."""
    s, y = np.asarray(score, float), np.asarray(label, float)
    if s.shape[1] >= min_cross:
        if rank:
            s, y = _rank_rows(np.where(np.isfinite(y), s, np.nan)), _rank_rows(np.where(np.isfinite(s), y, np.nan))
        ic = _corr_rows(s, y)
    else:
        nb = s.shape[0] // block
        if nb == 0:
            return np.zeros(0)
        sb = s[: nb * block].reshape(nb, -1)
        yb = y[: nb * block].reshape(nb, -1)
        if rank:
            both = np.isfinite(sb) & np.isfinite(yb)
            sb, yb = _rank_rows(np.where(both, sb, np.nan)), _rank_rows(np.where(both, yb, np.nan))
        ic = _corr_rows(sb, yb)
    return ic[np.isfinite(ic)]


def evaluate(score: np.ndarray, label: np.ndarray, min_cross: int = 5) -> dict[str, float]:
    """IC, rank IC, ICIR (mean/std of the IC series), hit rate (sign agreement), MSE, samples."""
    ic = ic_series(score, label, min_cross=min_cross)
    ric = ic_series(score, label, rank=True, min_cross=min_cross)
    ok = np.isfinite(score) & np.isfinite(label)
    s, y = score[ok], label[ok]
    nz = y != 0
    return {
        "ic": float(ic.mean()) if ic.size else float("nan"),
        "rank_ic": float(ric.mean()) if ric.size else float("nan"),
        "icir": float(ic.mean() / ic.std(ddof=1)) if ic.size > 2 and ic.std(ddof=1) > 0 else float("nan"),
        "hit_rate": float((np.sign(s[nz]) == np.sign(y[nz])).mean()) if nz.any() else float("nan"),
        "mse": float(((s - y) ** 2).mean()) if s.size else float("nan"),
        "n": int(s.size),
        "periods": int(ic.size),
    }
