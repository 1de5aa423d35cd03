"""Purged walk-forward splits over time indices.

A sample at time ``t`` has a label window ``[t, end[t]]``. A training sample is kept for a
test window starting at ``s`` only if ``end[t] < s - embargo``: its label is fully known
``embargo`` bars before the first test bar, so neither the label nor the serially correlated
bars right before the test window leak into the fit (purge = label horizon, plus embargo).
Training is expanding and always strictly before the test window (walk-forward).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Split:
    train: np.ndarray  # time indices
    test: np.ndarray


def label_end_by_time(end: np.ndarray) -> np.ndarray:
    """Latest label end per time (over symbols): the conservative end for purging."""
    return end.max(axis=1) if end.ndim == 2 else end


def purged_walk_forward(end: np.ndarray, n_folds: int, embargo: int = 0, first: int = 0,
                        min_train: int = 1) -> list[Split]:
    """``n_folds`` consecutive test windows over ``[first, T)``; the first block is training only."""
    e = label_end_by_time(end)
    T = e.shape[0]
    edges = np.linspace(first, T, n_folds + 2).astype(np.int64)
    times = np.arange(T)
    out: list[Split] = []
    for k in range(1, n_folds + 1):
        s, stop = int(edges[k]), int(edges[k + 1])
        train = times[(times >= first) & (times < s) & (e < s - embargo)]
        if train.size >= min_train and stop > s:
            out.append(Split(train, times[s:stop]))
    return out


def purged_holdout(train: np.ndarray, end: np.ndarray, frac: float = 0.2,
                   embargo: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split training times into (fit, validation): the last ``frac`` validates early stopping."""
    e = label_end_by_time(end)
    if train.size < 10:
        return train, train[:0]
    cut = int(train[int(len(train) * (1 - frac))])
    fit = train[(train < cut) & (e[train] < cut - embargo)]
    if fit.size < 10:  # too short to purge and still fit: no early stopping rather than no model
        return train, train[:0]
    return fit, train[train >= cut]


def overlaps(train: np.ndarray, test: np.ndarray, end: np.ndarray) -> bool:
    """True when any training label window ``[t, end[t]]`` intersects the test span."""
    if train.size == 0 or test.size == 0:
        return False
    e = label_end_by_time(end)
    lo, hi = int(test.min()), int(e[test].max())
    return bool(np.any((train <= hi) & (e[train] >= lo)))
