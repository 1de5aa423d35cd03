"""Small synthetic panels: a pure random walk, or one with a planted signal in feature 0."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from algobotd.models.dataset import Panel
from algobotd.models.deep import DeepParams
from algobotd.models.gbm import TreeParams
from algobotd.models.train import TrainSpec

torch.set_num_threads(1)


def make_panel(T: int = 300, N: int = 12, F: int = 6, strength: float = 0.0, seed: int = 0) -> Panel:
    """Returns r[t+1] = strength * X[t, :, 0] * sigma + noise: feature 0 predicts the next return."""
    g = np.random.default_rng(seed)
    X = g.normal(size=(T, N, F)).astype(np.float32)
    sigma = 0.01
    r = np.zeros((T, N))
    r[1:] = strength * X[:-1, :, 0] * sigma + g.normal(0, sigma, (T - 1, N))
    close = 100 * np.exp(np.cumsum(r, axis=0))
    ready = np.ones((T, N), dtype=bool)
    ready[:5] = False
    mom = np.full((T, N), np.nan)
    mom[20:] = np.log(close[20:] / close[:-20])  # a crude baseline, known at t
    return Panel(np.arange(T, dtype=np.int64), tuple(f"S{i}" for i in range(N)), X, close, ready, mom,
                 tuple(f"f{j}" for j in range(F)))


def small_spec(*models: str, **kw: object) -> TrainSpec:
    base = dict(models=models, horizon=1, folds=3, embargo=1, vol_span=20,
                tree=TreeParams(rounds=40, min_leaf=20), deep=DeepParams(seq_len=8, hidden=8, epochs=3, batch=256,
                                                                          max_steps_per_epoch=15))
    base.update(kw)
    return TrainSpec(**base)  # type: ignore[arg-type]


@pytest.fixture
def planted() -> Panel:
    return make_panel(strength=0.6, seed=1)


@pytest.fixture
def walk() -> Panel:
    return make_panel(strength=0.0, seed=2)
