"""Every base model trains and predicts on small data on CPU; absent ones are listed, not imported."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from algobotd.models.dataset import windows
from algobotd.models.deep import NETS, DeepParams, SequenceLearner, pick_device
from algobotd.models.gbm import TABULAR, TabularLearner, TreeParams, unavailable_reason
from algobotd.models.stack import AdaptiveWeights, Calibrator, Meta, confidence, effective_weights
from algobotd.models.train import train
from tests.models.conftest import small_spec

AVAILABLE = [m for m in TABULAR if unavailable_reason(m) is None]
MISSING = [m for m in TABULAR if unavailable_reason(m) is not None]


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


@pytest.mark.parametrize("name", AVAILABLE)
def test_tabular_model_learns_a_planted_signal(name: str) -> None:
    g = np.random.default_rng(0)
    X = g.normal(size=(2000, 5))
    X[g.random(X.shape) < 0.05] = np.nan  # NaN before windows fill: every model must cope
    X[:, 4] = np.nan  # an all-NaN column (a feature whose input is missing) is dropped, not fatal
    y = np.nan_to_num(X[:, 0]) * 0.5 + g.normal(size=2000)
    lr = TabularLearner(name, TreeParams(rounds=40, min_leaf=20))
    lr.fit(X[:1500], y[:1500], X[1500:1700], y[1500:1700])
    p = lr.predict(X[1700:])
    assert p.shape == (300,) and np.isfinite(p).all()
    assert _corr(p, y[1700:]) > 0.2
    if name in ("random_forest", "lightgbm", "hist_gbm"):  # the fast path equals the library's own predict
        assert np.allclose(p, lr.est.predict(X[1700:, lr.cols]), rtol=1e-6, atol=1e-9)
    if name == "hist_gbm":  # early stopping on the given (purged) validation split kept the best prefix
        staged = [float(np.mean((q - y[1500:1700]) ** 2)) for q in lr.est.staged_predict(X[1500:1700, lr.cols])]
        assert lr.n_trees == len(staged) and staged[-1] == min(staged) and lr.n_trees <= 40


@pytest.mark.parametrize("name", ["lightgbm", "hist_gbm"])
def test_early_stop_off_grows_every_round_even_on_noise(name: str) -> None:
    g = np.random.default_rng(1)
    X, y = g.normal(size=(1200, 4)), g.normal(size=1200)  # nothing to learn: early stopping would cut
    stopped = TabularLearner(name, TreeParams(rounds=60, min_leaf=20))
    stopped.fit(X[:1000], y[:1000], X[1000:], y[1000:])
    full = TabularLearner(name, TreeParams(rounds=60, min_leaf=20, early_stop=False))
    full.fit(X[:1000], y[:1000], X[1000:], y[1000:])
    assert full.n_trees == 60 and stopped.n_trees < 60


@pytest.mark.parametrize("name", MISSING)
def test_missing_boost_models_are_listed_and_skipped(name: str, walk) -> None:
    with pytest.raises(RuntimeError, match="not installed"):
        TabularLearner(name, TreeParams())
    b = train(walk, small_spec("lightgbm", name))
    assert name in b.unavailable and b.names == ("lightgbm",)


@pytest.mark.parametrize("name", sorted(NETS))
def test_sequence_model_learns_from_the_window(name: str) -> None:
    """Label = feature 0 three steps back: only a model that reads the sequence can predict it."""
    torch.set_num_threads(1)
    g = np.random.default_rng(1)
    T, N, F = 160, 16, 3
    X = g.normal(size=(T, N, F)).astype(np.float32)
    y = np.full((T, N), np.nan)
    y[3:] = X[:-3, :, 0] + 0.3 * g.normal(size=(T - 3, N))
    tt, ii = np.meshgrid(np.arange(10, 120), np.arange(N), indexing="ij")
    tv, iv = np.meshgrid(np.arange(120, 135), np.arange(N), indexing="ij")
    lr = SequenceLearner(name, DeepParams(seq_len=6, hidden=16, epochs=12, batch=128, lr=5e-3, patience=4,
                                          max_steps_per_epoch=20, device="cpu"))
    lr.fit(X, tt.ravel(), ii.ravel(), y[tt, ii].ravel(), tv.ravel(), iv.ravel(), y[tv, iv].ravel())
    ts, is_ = np.meshgrid(np.arange(135, T), np.arange(N), indexing="ij")
    p = lr.predict(windows(X, ts.ravel(), is_.ravel(), 10))  # longer windows: the last seq_len steps are used
    assert np.isfinite(p).all()
    assert _corr(p, y[ts, is_].ravel()) > 0.3, name


def test_device_auto_falls_back_to_cpu_here() -> None:
    if not torch.cuda.is_available():
        assert pick_device("auto").type in ("cpu", "mps")
    assert pick_device("cpu").type == "cpu"


def test_meta_learner_weights_the_informative_model() -> None:
    g = np.random.default_rng(2)
    y = g.normal(size=3000)
    P = np.stack([y + g.normal(size=3000), g.normal(size=3000)], axis=1)  # model 0 informative
    meta = Meta.fit(("good", "noise"), P, y)
    assert meta.beta[0] > 5 * abs(meta.beta[1])


def test_lightgbm_meta_learner_finds_what_ridge_cannot() -> None:
    """Model 0 is only informative when model 1 is positive (an interaction): the small LightGBM
    meta-learner scores better out of sample than ridge, and its projected weight still favours model 0."""
    g = np.random.default_rng(4)
    P = g.normal(size=(8000, 2))
    y = np.where(P[:, 1] > 0, P[:, 0], 0.0) + 0.5 * g.normal(size=8000)
    fit, test = slice(0, 6000), slice(6000, None)
    corr = {}
    for kind in ("ridge", "lightgbm"):
        meta = Meta.fit(("cond", "gate"), P[fit], y[fit], kind=kind)
        s = meta.linear(meta.scaler(P[test]), meta.beta)
        corr[kind] = _corr(s, y[test])
        assert meta.beta[0] > 3 * abs(meta.beta[1]), kind
    assert corr["lightgbm"] > corr["ridge"] + 0.05, corr
    with pytest.raises(ValueError, match="unknown meta-learner"):
        Meta.fit(("a", "b"), P[:100], y[:100], kind="svm")


def test_ensemble_trains_with_the_lightgbm_meta_learner(planted) -> None:
    b = train(planted, small_spec("lightgbm", "random_forest", meta="lightgbm"))
    assert b.meta.booster is not None and b.metrics["ensemble"]["ic"] > 0.1


def test_adaptive_weights_follow_recent_ic() -> None:
    aw = AdaptiveWeights(2, halflife=5, prior_ic=np.array([0.1, 0.1]))
    for _ in range(30):
        aw.update(np.array([-0.05, 0.2]))
    w = aw.weights()
    assert w[1] == pytest.approx(1.0) and w[0] == 0.0
    meta = Meta.fit(("a", "b"), np.random.default_rng(0).normal(size=(50, 2)), np.random.default_rng(1).normal(size=50))
    W = effective_weights(meta, w, mix=0.5)
    scale = np.abs(meta.beta).sum()
    assert W == pytest.approx(0.5 * meta.beta + 0.5 * scale * np.array([0.0, 1.0]))
    assert effective_weights(meta, np.zeros(2), 0.5) == pytest.approx(meta.beta)  # no positive IC: meta alone


def test_confidence_from_agreement_and_calibration() -> None:
    g = np.random.default_rng(3)
    s = g.normal(size=4000)
    y = s + g.normal(size=4000) * 2  # larger |score| -> more often the right sign
    cal = Calibrator.fit(s, y)
    assert cal.reliability(np.array([3.0]))[0] > cal.reliability(np.array([0.05]))[0]
    Z = np.array([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0]])
    c = confidence(Z, np.ones(3), np.array([2.0, 2.0]), cal)
    assert c[0] > c[1] and ((c >= 0) & (c <= 1)).all()
