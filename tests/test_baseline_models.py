"""The yardstick models equal a plain recomputation over each symbol's valid history."""

from __future__ import annotations

import numpy as np
import pytest

from algobotd.config import load
from algobotd.domain import BarBatch
from algobotd.models.baseline import MomentumModel, SmaCrossModel

N, T = 5, 300


def batches(seed: int = 0):
    rng = np.random.default_rng(seed)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (T, N)), axis=0))
    valid = rng.random((T, N)) > 0.1  # stale symbols keep their state
    nan = np.full(N, np.nan)
    for t in range(T):
        c = np.where(valid[t], closes[t], np.nan)
        yield BarBatch(t, tuple("ABCDE"), c, c, c, c, np.ones(N), valid[t], nan, nan), closes[t], valid[t]


def test_momentum_matches_recompute() -> None:
    cfg = load().model
    model = MomentumModel(cfg, N)
    hist: list[list[float]] = [[] for _ in range(N)]
    checked = 0
    for batch, closes, valid in batches():
        pred = model.update(batch)
        for i in np.flatnonzero(valid):
            hist[i].append(closes[i])
        for i in range(N):
            h = np.array(hist[i])
            if len(h) > max(cfg.lookback, cfg.vol_window):
                r = np.diff(np.log(h))[-cfg.vol_window:]
                ref = np.log(h[-1] / h[-1 - cfg.lookback]) / (r.std(ddof=1) * np.sqrt(cfg.lookback))
                assert pred.ready[i]
                assert pred.score[i] == pytest.approx(ref, rel=1e-9)
                checked += 1
            else:
                assert not pred.ready[i] and np.isnan(pred.score[i])
    assert checked > 500


def test_sma_cross_matches_recompute() -> None:
    cfg = load(None, ["model.kind=\"sma_cross\"", "model.fast=5", "model.slow=12"]).model
    model = SmaCrossModel(cfg, N)
    hist: list[list[float]] = [[] for _ in range(N)]
    for batch, closes, valid in batches(1):
        pred = model.update(batch)
        for i in np.flatnonzero(valid):
            hist[i].append(closes[i])
        for i in range(N):
            h = np.array(hist[i])
            if len(h) >= cfg.slow:
                ref = h[-cfg.fast:].mean() / h[-cfg.slow:].mean() - 1
                assert pred.score[i] == pytest.approx(ref, rel=1e-9, abs=1e-12)
            else:
                assert not pred.ready[i]


def test_momentum_lockstep_path_is_bit_identical_to_the_general_path() -> None:
    """Full batches take a shortcut (_update_lockstep); a twin model with one extra symbol that
    never reports always takes the general path. Same numbers bit for bit, including a flat
    symbol (sigma 0: not ready) and a gap where nobody reports (lockstep is re-entered after)."""
    cfg = load().model
    rng = np.random.default_rng(7)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (T, N)), axis=0))
    closes[:, 2] = 50.0  # flat
    fast, general = MomentumModel(cfg, N), MomentumModel(cfg, N + 1)
    took_shortcut = 0
    for t in range(T):
        valid = np.full(N, not 150 <= t < 155)
        c = np.where(valid, closes[t], np.nan)
        nan = np.full(N, np.nan)
        p = fast.update(BarBatch(t, tuple("ABCDE"), c, c, c, c, np.ones(N), valid, nan, nan))
        took_shortcut += fast._lockstep
        c1, v1, nan1 = np.append(c, np.nan), np.append(valid, False), np.full(N + 1, np.nan)
        q = general.update(BarBatch(t, tuple("ABCDEF"), c1, c1, c1, c1, np.ones(N + 1), v1, nan1, nan1))
        assert not general._lockstep
        for got, want in ((p.score, q.score[:N]), (p.confidence, q.confidence[:N]), (p.ready, q.ready[:N])):
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), t
    assert took_shortcut > T - 20
    assert not p.ready[2] and p.ready[[0, 1, 3, 4]].all()
