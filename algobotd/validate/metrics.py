"""Performance statistics on an equity curve sampled once per bar."""

from __future__ import annotations

import numpy as np

TRADING_DAYS = 252
SESSION_SECONDS = 23_400


def bars_per_year(bar_seconds: int) -> float:
    return TRADING_DAYS * max(1.0, SESSION_SECONDS / bar_seconds)


def max_drawdown(equity: np.ndarray) -> float:
    """Largest fall from a running peak, as a positive fraction."""
    if equity.size == 0:
        return 0.0
    peak = np.maximum.accumulate(equity)
    return float(np.max(1.0 - equity / peak))


def summarize(equity: np.ndarray, initial: float, bar_seconds: int) -> dict[str, float]:
    """Total and annualised return, annualised volatility, Sharpe (risk-free 0), max drawdown."""
    curve = np.concatenate([[initial], equity])
    rets = np.diff(curve) / curve[:-1]
    per_year = bars_per_year(bar_seconds)
    total = float(curve[-1] / initial - 1.0)
    years = max(len(rets) / per_year, 1e-12)
    vol = float(np.std(rets, ddof=1) * np.sqrt(per_year)) if len(rets) > 1 else 0.0
    mean = float(np.mean(rets)) if len(rets) else 0.0
    sharpe = float(mean / np.std(rets, ddof=1) * np.sqrt(per_year)) if len(rets) > 1 and np.std(rets) > 0 else 0.0
    annual = float((1.0 + total) ** (1.0 / years) - 1.0) if total > -1 else -1.0
    return {
        "total_return": total,
        "annual_return": annual,
        "annual_volatility": vol,
        "sharpe": sharpe,
        "max_drawdown": max_drawdown(curve),
    }
