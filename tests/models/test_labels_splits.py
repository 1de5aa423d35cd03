from __future__ import annotations

import numpy as np
import pytest

from algobotd.labels import cross_sectional_z, ewma_vol, forward_return_labels, triple_barrier_labels
from algobotd.models.splits import overlaps, purged_holdout, purged_walk_forward


def closes(T: int = 120, N: int = 5, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    return 100 * np.exp(np.cumsum(g.normal(0, 0.01, (T, N)), axis=0))


def test_forward_label_value_end_and_tail() -> None:
    c = closes()
    lab = forward_return_labels(c, horizon=3, vol_span=10)
    sig = ewma_vol(c, 10)
    t, i = 50, 2
    assert lab.y[t, i] == pytest.approx(np.log(c[t + 3, i] / c[t, i]) / (sig[t, i] * np.sqrt(3)))
    assert (lab.end[:, 0] == np.arange(len(c)) + 3).all()
    assert np.isnan(lab.y[-3:]).all() and np.isfinite(lab.y[10:-3]).all()


def test_label_volatility_uses_only_the_past() -> None:
    c = closes()
    changed = c.copy()
    changed[61:] *= 1.5  # a jump after t=60 must not change the normaliser at t <= 60
    assert np.allclose(ewma_vol(c, 10)[:61], ewma_vol(changed, 10)[:61], equal_nan=True)


def test_cross_sectional_z_rows() -> None:
    z = cross_sectional_z(np.array([[1.0, 2.0, 3.0, np.nan], [1.0, np.nan, np.nan, np.nan]]))
    assert z[0, :3] == pytest.approx([-1, 0, 1]) and np.isnan(z[0, 3]) and np.isnan(z[1]).all()


def test_triple_barrier_touch_sets_label_and_end() -> None:
    c = np.full((40, 2), 100.0)
    c[:, 0] *= np.exp(np.linspace(0, 0.01, 40) + 0.001 * (np.arange(40) % 2))  # tiny noise -> vol > 0
    c[:, 1] = c[:, 0]
    c[31, 0] = c[30, 0] * 1.5  # sharp rise: profit-take for starts just before 31
    c[31, 1] = c[30, 1] / 1.5  # sharp fall: stop-loss
    lab = triple_barrier_labels(c, horizon=5, pt_mult=1.0, sl_mult=1.0, vol_span=10)
    assert lab.y[29, 0] == 1.0 and lab.end[29, 0] == 31
    assert lab.y[29, 1] == -1.0 and lab.end[29, 1] == 31
    assert np.all(np.abs(lab.y[np.isfinite(lab.y)]) <= 1.0)


@pytest.mark.parametrize("horizon,embargo,folds", [(1, 0, 3), (5, 2, 4), (20, 10, 5), (7, 0, 2)])
def test_purged_splits_never_overlap(horizon: int, embargo: int, folds: int) -> None:
    T = 400
    end = np.broadcast_to(np.arange(T)[:, None] + horizon, (T, 3))
    splits = purged_walk_forward(end, folds, embargo, first=10)
    assert len(splits) == folds
    for sp in splits:
        assert not overlaps(sp.train, sp.test, end)
        assert sp.train.max() + horizon < sp.test.min() - embargo  # label end before the test window
        fit, val = purged_holdout(sp.train, end, 0.2, embargo)
        assert not overlaps(fit, val, end) and fit.size > 0
        assert val.size > 0 or fit.size == sp.train.size  # too short: all fit, no validation


def test_overlap_detector_detects_leaks() -> None:
    end = np.arange(100) + 5
    assert overlaps(np.arange(0, 50), np.arange(50, 60), end)  # labels of 45..49 reach into the test
    assert not overlaps(np.arange(0, 45), np.arange(50, 60), end)


def test_time_series_ic_of_momentum_on_a_random_walk_is_unbiased() -> None:
    """Two symbols: no cross-section, so IC is per block of dates; short blocks would bias it."""
    from algobotd.models.metrics import evaluate

    g = np.random.default_rng(0)
    c = 100 * np.exp(np.cumsum(g.normal(0, 0.01, (6000, 2)), axis=0))
    y = forward_return_labels(c, 5, 60).y
    mom = np.full(c.shape, np.nan)
    mom[30:] = np.log(c[30:] / c[:-30])
    m = evaluate(mom, y)
    assert abs(m["ic"]) < 3 * 0.25 / np.sqrt(m["periods"]) and m["periods"] >= 20
