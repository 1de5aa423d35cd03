"""Minimal sizing for the spine: equal-value positions capped per symbol and in gross.

The risk issue replaces this with fractional Kelly; the interface (arrays in, whole-share
target quantities out, vectorised across symbols) stays.
"""

from __future__ import annotations

import numpy as np

from algobotd.config import RiskConfig


def target_quantities(
    score: np.ndarray,
    ready: np.ndarray,
    entry: float,
    exit: float,
    current: np.ndarray,
    price: np.ndarray,
    equity: float,
    cfg: RiskConfig,
) -> np.ndarray:
    """Whole-share targets: enter at ``score > entry``, leave at ``score < exit``, else hold.

    Holding keeps the current quantity instead of re-targeting every bar, which would trade
    a few shares on every price move.
    """
    usable = ready & np.isfinite(price) & (price > 0)
    target = current.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        size = np.where(usable, np.floor(cfg.max_position_pct * equity / np.where(usable, price, 1.0)), 0).astype(np.int64)
    go_long = usable & (score > entry) & (current <= 0)
    leave_long = usable & (score < exit) & (current > 0)
    target[leave_long] = 0
    if cfg.allow_short:
        go_short = usable & (score < -entry) & (current >= 0)
        leave_short = usable & (score > -exit) & (current < 0)
        target[leave_short] = 0
        target[go_short] = -size[go_short]
    else:
        target[current < 0] = 0
    target[go_long] = size[go_long]
    return _cap_gross(target, current, score, price, equity, cfg)


def _cap_gross(target: np.ndarray, current: np.ndarray, score: np.ndarray, price: np.ndarray,
               equity: float, cfg: RiskConfig) -> np.ndarray:
    """Drop the weakest new entries until gross exposure fits ``max_gross_pct``."""
    value = np.abs(target) * np.nan_to_num(price)
    budget = cfg.max_gross_pct * equity
    total = value.sum()
    if total <= budget:
        return target
    entries = np.flatnonzero((target != 0) & (current == 0))
    order = entries[np.argsort(-np.abs(np.nan_to_num(score[entries])), kind="stable")]
    kept = total - value[entries].sum()
    for i in order:  # only new entries, a handful per bar
        if kept + value[i] <= budget:
            kept += value[i]
        else:
            target[i] = 0
    return target
