"""Leakage guards: random walk -> OOS IC ~ 0; planted signal -> clearly positive; shuffled labels -> gone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from algobotd.domain import BarBatch
from algobotd.models.dataset import panel_from_batches
from algobotd.models.train import train
from tests.models.conftest import make_panel, small_spec

MODELS = ("lightgbm", "cnn")


def _ic_bound(m: dict) -> float:
    # 4 standard errors of a mean of ``periods`` per-date ICs, each with sd ~ 1/sqrt(N - 1)
    return 4.0 / np.sqrt(11) / np.sqrt(m["periods"])


def test_random_walk_oos_ic_indistinguishable_from_zero(walk) -> None:
    b = train(walk, small_spec(*MODELS))
    for name in MODELS:
        m = b.metrics["models"][name]
        assert abs(m["ic"]) < _ic_bound(m), (name, m)
    e = b.metrics["ensemble"]
    assert abs(e["ic"]) < _ic_bound(e)


def test_planted_signal_oos_ic_clearly_positive(planted) -> None:
    b = train(planted, small_spec(*MODELS))
    for name in MODELS:
        m = b.metrics["models"][name]
        assert m["ic"] > 0.2 and m["icir"] > 0.5, (name, m)
    assert b.metrics["ensemble"]["ic"] > 0.2
    assert b.metrics["models"]["lightgbm"]["ic"] > b.metrics["baseline"]["ic"] + 0.1


def test_shuffling_labels_in_time_destroys_the_signal(planted) -> None:
    g = np.random.default_rng(5)
    perm = g.permutation(planted.X.shape[0])
    # shuffle the feature rows in time: each row now sits next to another time's label
    shuffled = dataclasses.replace(planted, X=planted.X[perm])
    b = train(shuffled, small_spec("lightgbm"))
    m = b.metrics["models"]["lightgbm"]
    assert abs(m["ic"]) < _ic_bound(m), m


def test_planted_signal_through_the_live_feature_engine() -> None:
    """AR(1) mean reversion in returns: the engine's ret_1 feature predicts; trained end to end."""
    g = np.random.default_rng(3)
    T, N = 360, 10
    r = np.zeros((T, N))
    for t in range(1, T):
        r[t] = -0.5 * r[t - 1] + g.normal(0, 0.01, N)
    c = 100 * np.exp(np.cumsum(r, axis=0))
    syms = tuple(f"S{i}" for i in range(N))
    batches = [BarBatch(10**18 + t * 60 * 10**9, syms, c[t - 1] if t else c[0], np.maximum(c[t], c[t - 1]) * 1.001,
                        np.minimum(c[t], c[t - 1]) * 0.999, c[t], np.full(N, 1e5), np.ones(N, bool),
                        np.full(N, np.nan), np.full(N, np.nan)) for t in range(T)]
    panel = panel_from_batches(batches)
    assert panel.X.shape[2] >= 60 and panel.ready[-1].all()
    b = train(panel, small_spec("lightgbm", embargo=1, folds=2))
    assert b.metrics["models"]["lightgbm"]["ic"] > 0.2, b.metrics["models"]


@pytest.mark.parametrize("strength", [0.0])
def test_ensemble_metrics_use_same_samples_for_all(strength: float) -> None:
    b = train(make_panel(strength=strength, seed=9, T=200), small_spec("lightgbm", "hist_gbm"))
    ns = {b.metrics["ensemble"]["n"], b.metrics["baseline"]["n"], *(m["n"] for m in b.metrics["models"].values())}
    assert len(ns) == 1 and ns.pop() > 0
