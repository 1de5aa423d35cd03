"""Performance and forecast statistics: returns-based, prediction-based, and multiple-testing aware.

Conventions (so numbers are comparable across reports):
- ``returns`` are simple per-bar returns; annualisation multiplies by ``sqrt(periods_per_year)``.
- Sharpe uses the sample standard deviation (ddof=1) and a zero risk-free rate.
- PSR / DSR / MinTRL (Bailey & López de Prado 2012, 2014) work on the *non-annualised* per-bar
  Sharpe with the sample skewness and the *raw* (Pearson, normal = 3) kurtosis.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

_NORMAL = NormalDist()  # stdlib: scipy.stats would add ~1.5 s to every worker's start-up

TRADING_DAYS = 252
SESSION_SECONDS = 23_400
EULER_GAMMA = 0.5772156649015329


def bars_per_year(bar_seconds: int) -> float:
    return TRADING_DAYS * max(1.0, SESSION_SECONDS / bar_seconds)


def returns_of(equity: np.ndarray, initial: float | None = None) -> np.ndarray:
    """Per-bar simple returns of an equity curve (prefixed with ``initial`` when given)."""
    curve = np.asarray(equity, dtype=float)
    if initial is not None:
        curve = np.concatenate([[initial], curve])
    if curve.size < 2:
        return np.empty(0)
    return np.diff(curve) / curve[:-1]


# --- returns-based ----------------------------------------------------------------------------


def max_drawdown(equity: np.ndarray) -> float:
    """Largest fall from a running peak, as a positive fraction."""
    if equity.size == 0:
        return 0.0
    peak = np.maximum.accumulate(equity)
    return float(np.max(1.0 - equity / peak))


def drawdown_curve(equity: np.ndarray) -> np.ndarray:
    """1 - equity / running peak, per point (for reports)."""
    equity = np.asarray(equity, dtype=float)
    if equity.size == 0:
        return equity
    return 1.0 - equity / np.maximum.accumulate(equity)


def sharpe(returns: np.ndarray, periods_per_year: float = 1.0) -> float:
    """mean / sample std, scaled by sqrt(periods_per_year); 0 when undefined (flat or < 2 points)."""
    r = np.asarray(returns, dtype=float)
    if r.size < 2:
        return 0.0
    sd = float(np.std(r, ddof=1))
    if not sd > 0:
        return 0.0
    return float(np.mean(r) / sd * math.sqrt(periods_per_year))


def sortino(returns: np.ndarray, periods_per_year: float = 1.0, target: float = 0.0) -> float:
    """(mean - target) / downside deviation; downside deviation = sqrt(mean(min(r - target, 0)^2))
    over *all* observations (Sortino & Price 1994), so the ratio does not reward few losses twice."""
    r = np.asarray(returns, dtype=float)
    if r.size == 0:
        return 0.0
    down = np.minimum(r - target, 0.0)
    dd = float(np.sqrt(np.mean(down * down)))
    if not dd > 0:
        return 0.0
    return float((np.mean(r) - target) / dd * math.sqrt(periods_per_year))


def annual_return(total_return: float, n_periods: int, periods_per_year: float) -> float:
    years = max(n_periods / periods_per_year, 1e-12)
    return float((1.0 + total_return) ** (1.0 / years) - 1.0) if total_return > -1 else -1.0


def calmar(annual: float, mdd: float) -> float:
    """Annualised return / max drawdown; 0 when there was no drawdown (undefined, not infinite)."""
    return float(annual / mdd) if mdd > 0 else 0.0


def hit_rate(returns: np.ndarray) -> float:
    """Share of positive returns among the non-zero ones (flat bars: no bet, not a miss)."""
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r) & (r != 0)]
    return float(np.mean(r > 0)) if r.size else 0.0


def turnover(traded_value: float, mean_equity: float) -> float:
    """Traded notional (buys + sells) over mean equity, for the whole period."""
    return float(traded_value / mean_equity) if mean_equity > 0 else 0.0


def summarize(equity: np.ndarray, initial: float, bar_seconds: int) -> dict[str, float]:
    """Total and annualised return, annualised volatility, Sharpe (risk-free 0), max drawdown,
    plus Sortino, Calmar and hit rate (extra keys; the first five are the backtest's contract)."""
    curve = np.concatenate([[initial], equity])
    rets = np.diff(curve) / curve[:-1]
    per_year = bars_per_year(bar_seconds)
    total = float(curve[-1] / initial - 1.0)
    vol = float(np.std(rets, ddof=1) * np.sqrt(per_year)) if len(rets) > 1 else 0.0
    annual = annual_return(total, len(rets), per_year)
    mdd = max_drawdown(curve)
    return {
        "total_return": total,
        "annual_return": annual,
        "annual_volatility": vol,
        "sharpe": sharpe(rets, per_year),
        "max_drawdown": mdd,
        "sortino": sortino(rets, per_year),
        "calmar": calmar(annual, mdd),
        "hit_rate": hit_rate(rets),
    }


# --- prediction quality -----------------------------------------------------------------------


def rankdata(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties share the mean of their positions (as scipy's 'average')."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.r_[0, np.flatnonzero(xs[1:] != xs[:-1]) + 1]
    ends = np.r_[starts[1:], xs.size]
    avg = (starts + ends + 1) / 2.0  # mean of 1-based positions start+1 .. end
    ranks = np.empty(x.size)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def information_coefficient(pred: np.ndarray, realized: np.ndarray) -> float:
    """Pearson correlation over the finite pairs; NaN with < 3 pairs or no dispersion."""
    p, y = np.asarray(pred, dtype=float), np.asarray(realized, dtype=float)
    m = np.isfinite(p) & np.isfinite(y)
    if m.sum() < 3:
        return math.nan
    p, y = p[m], y[m]
    if np.std(p) == 0 or np.std(y) == 0:
        return math.nan
    return float(np.corrcoef(p, y)[0, 1])


def rank_ic(pred: np.ndarray, realized: np.ndarray) -> float:
    """Spearman correlation (Pearson on average ranks, ties shared)."""
    p, y = np.asarray(pred, dtype=float), np.asarray(realized, dtype=float)
    m = np.isfinite(p) & np.isfinite(y)
    if m.sum() < 3:
        return math.nan
    return information_coefficient(rankdata(p[m]), rankdata(y[m]))


def ic_series(pred: np.ndarray, realized: np.ndarray, rank: bool = False) -> np.ndarray:
    """Cross-sectional IC per row of ``[n_bars, n_symbols]`` matrices (NaN where undefined)."""
    f = rank_ic if rank else information_coefficient
    return np.array([f(p, y) for p, y in zip(np.asarray(pred), np.asarray(realized))], dtype=float)


def ic_summary(pred: np.ndarray, realized: np.ndarray) -> dict[str, float]:
    """Mean cross-sectional IC and rank IC, and ICIR = mean / std of the per-bar IC series.

    With a single symbol there is no cross-section: the IC is then the time-series correlation.
    """
    pred, realized = np.asarray(pred, dtype=float), np.asarray(realized, dtype=float)
    if pred.ndim == 2 and pred.shape[1] < 3:
        return {"ic": information_coefficient(pred.ravel(), realized.ravel()),
                "rank_ic": rank_ic(pred.ravel(), realized.ravel()), "icir": math.nan, "ic_bars": pred.shape[0]}
    s = ic_series(pred, realized)
    rs = ic_series(pred, realized, rank=True)
    s_ok = s[np.isfinite(s)]
    rs_ok = rs[np.isfinite(rs)]
    icir = float(np.mean(s_ok) / np.std(s_ok, ddof=1)) if s_ok.size > 1 and np.std(s_ok) > 0 else math.nan
    return {"ic": float(np.mean(s_ok)) if s_ok.size else math.nan,
            "rank_ic": float(np.mean(rs_ok)) if rs_ok.size else math.nan,
            "icir": icir, "ic_bars": int(s_ok.size)}


# --- multiple-testing aware Sharpe statistics (Bailey & López de Prado) -------------------------


def moments(returns: np.ndarray) -> tuple[float, float, float, int]:
    """(per-bar Sharpe, skewness, raw kurtosis, n) of a return series."""
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    n = int(r.size)
    if n < 3 or not np.std(r) > 0:
        return 0.0, 0.0, 3.0, n
    d = r - r.mean()
    m2 = float(np.mean(d * d))
    # population (biased) moments, as scipy.stats.skew / kurtosis(fisher=False) by default
    return sharpe(r), float(np.mean(d**3) / m2**1.5), float(np.mean(d**4) / m2**2), n


def _sr_sd_term(sr: float, skew: float, kurt: float) -> float:
    return 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr


def psr(sr: float, n: int, skew: float = 0.0, kurt: float = 3.0, sr_benchmark: float = 0.0) -> float:
    """Probabilistic Sharpe ratio: P(true SR > sr_benchmark) given an observed per-bar ``sr`` over
    ``n`` observations, corrected for skewness and raw kurtosis."""
    if n < 2:
        return math.nan
    denom = _sr_sd_term(sr, skew, kurt)
    if not denom > 0:
        return math.nan
    z = (sr - sr_benchmark) * math.sqrt(n - 1) / math.sqrt(denom)
    return float(_NORMAL.cdf(z))


def expected_max_sharpe(n_trials: int, var_trials: float) -> float:
    """E[max SR] of ``n_trials`` unskilled configurations whose Sharpe estimates have variance
    ``var_trials`` (False Strategy Theorem): the DSR's benchmark."""
    if n_trials <= 1 or not var_trials > 0:
        return 0.0
    g = EULER_GAMMA
    q1 = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    q2 = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return float(math.sqrt(var_trials) * ((1.0 - g) * q1 + g * q2))


def dsr(sr: float, n: int, skew: float, kurt: float, n_trials: int, var_trials: float) -> float:
    """Deflated Sharpe ratio: PSR against the expected maximum Sharpe of ``n_trials`` tries."""
    return psr(sr, n, skew, kurt, expected_max_sharpe(n_trials, var_trials))


def min_track_record_length(sr: float, skew: float = 0.0, kurt: float = 3.0, sr_benchmark: float = 0.0,
                            prob: float = 0.95) -> float:
    """Observations needed for PSR(sr_benchmark) >= prob; inf when sr <= sr_benchmark."""
    if sr <= sr_benchmark:
        return math.inf
    z = _NORMAL.inv_cdf(prob)
    return float(1.0 + _sr_sd_term(sr, skew, kurt) * (z / (sr - sr_benchmark)) ** 2)


def sharpe_stats(returns: np.ndarray, periods_per_year: float, n_trials: int = 1,
                 var_trials: float = 0.0) -> dict[str, float]:
    """PSR(0), DSR and MinTRL (in bars) of one return series; Sharpe reported annualised."""
    sr, skew, kurt, n = moments(returns)
    return {
        "sharpe": sr * math.sqrt(periods_per_year),
        "skew": skew,
        "kurtosis": kurt,
        "psr": psr(sr, n, skew, kurt),
        "dsr": dsr(sr, n, skew, kurt, max(1, n_trials), var_trials),
        "min_trl_bars": min_track_record_length(sr, skew, kurt),
        "n_trials": n_trials,
    }
