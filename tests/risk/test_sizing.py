"""Fractional-Kelly sizing against hand-computed cases (defaults: p0 0.55, W0 2%, L0 1.5%, k 20)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from algobotd.config import RiskConfig
from algobotd.domain import Fill, Side
from algobotd.risk.sizing import TradeStats, VolEstimator, full_kelly, shrunk_inputs, size_targets

CFG = RiskConfig()


def kelly_of(stats: TradeStats, cfg: RiskConfig = CFG) -> float:
    p, w, lo = shrunk_inputs(stats, 1, cfg)
    return float(full_kelly(p, w, lo)[0])


def stats_with(wins: list[float], losses: list[float]) -> TradeStats:
    s = TradeStats(1)
    s.wins[0], s.win_sum[0] = len(wins), sum(wins)
    s.losses[0], s.loss_sum[0] = len(losses), sum(losses)
    return s


def test_no_history_is_the_prior() -> None:
    # p = 0.55, b = 0.02 / 0.015 = 4/3, f* = 0.55 - 0.45 * 3/4 = 0.2125
    assert kelly_of(TradeStats(1)) == pytest.approx(0.2125, abs=1e-12)


def test_all_losses_gives_zero() -> None:
    # 10 losses of 3%: p = 11/30, W = 0.02, L = (0.30 + 0.135)/19 = 0.022895, f* = 0.3667 - 0.6333/0.8736 < 0 -> 0
    p, w, lo = shrunk_inputs(stats_with([], [0.03] * 10), 1, CFG)
    assert p[0] == pytest.approx(11 / 30) and w[0] == pytest.approx(0.02) and lo[0] == pytest.approx(0.435 / 19)
    assert kelly_of(stats_with([], [0.03] * 10)) == 0.0


def test_history_shrunk_toward_prior() -> None:
    # 30 wins of 4%, 10 losses of 2%: p = 41/60, W = 1.42/41, L = 0.335/19 -> f* = 0.522124
    assert kelly_of(stats_with([0.04] * 30, [0.02] * 10)) == pytest.approx(0.5221244131, abs=1e-9)
    # without a prior the raw record: p = 0.75, b = 2 -> f* = 0.75 - 0.25/2 = 0.625
    raw = RiskConfig(prior_trades=0.0)
    assert kelly_of(stats_with([0.04] * 30, [0.02] * 10), raw) == pytest.approx(0.625)


def test_kelly_clip_bounds() -> None:
    # never a loss, no prior: f* = p = 1 (upper bound); a certain loser clips at 0
    raw = RiskConfig(prior_trades=0.0)
    assert kelly_of(stats_with([0.01] * 5, []), raw) == pytest.approx(1.0)
    assert kelly_of(stats_with([], [0.01] * 5), raw) == 0.0
    f = full_kelly(np.array([0.0, 1.0, 0.5]), np.array([0.01, 0.01, 0.0]), np.array([0.01, 0.0, 0.01]))
    assert f.tolist() == [0.0, 1.0, 0.0]


def test_round_trips_from_fills() -> None:
    s = TradeStats(1)
    fills = [(Side.BUY, 100, 10.0), (Side.SELL, 50, 11.0), (Side.SELL, 50, 12.0),  # +150 / 1000 = +15%
             (Side.BUY, 10, 10.0), (Side.SELL, 20, 9.0),  # long closes -10 / 100 = -10%, flips short 10 @ 9
             (Side.BUY, 10, 8.0)]  # short closes +10 / 90
    for k, (side, q, px) in enumerate(fills):
        s.on_fill(0, Fill(f"e{k}", "c", "AAA", side, q, px, 0.0, k))
    assert (s.wins[0], s.losses[0]) == (2, 1)
    assert s.win_sum[0] == pytest.approx(0.15 + 10 / 90)
    assert s.loss_sum[0] == pytest.approx(0.10)


def _vol(n: int, sigma: list[float], market: float) -> VolEstimator:
    v = VolEstimator(n, 60.0, 20)
    v.var[:] = np.square(sigma)
    v.count[:] = 100
    v.market_vars[0], v.market_counts[0] = market**2, 100
    return v


def _size(score, conf, price, sigma, market, held=None, equity=1_000_000.0, cfg=CFG, **kw):
    n = len(score)
    held = np.zeros(n, dtype=np.int64) if held is None else np.asarray(held, dtype=np.int64)
    return size_targets(np.asarray(score, float), np.asarray(conf, float), np.ones(n, bool), 1.0, 0.0, held,
                        np.asarray(price, float), equity, TradeStats(n), _vol(n, sigma, market), 60, cfg, **kw)


def test_vol_ratio_clip_and_position_cap() -> None:
    # symbol 0: market vol 4x its own -> ratio clipped to 2; 0.25 * 0.2125 * 0.6 * 2 = 6.375% -> 63,750 / 50 = 1275
    # symbol 1: market vol 1/4 of its own -> clipped to 0.5: 0.25 * 0.2125 * 0.6 * 0.5 = 1.59375% -> 15,937.5 / 50 = 318
    # symbol 2: confidence 1, ratio 2: 10.625% -> capped at 10% -> 100,000 / 50 = 2000
    r = _size([2, 2, 2], [0.6, 0.6, 1.0], [50, 50, 50], [0.0005, 0.008, 0.0005], 0.002,
              cfg=RiskConfig(risk_budget_pct=100.0, max_gross_pct=10.0))
    assert r.vol_ratio.tolist() == [2.0, 0.5, 2.0]
    assert r.target.tolist() == [1275, 318, 2000]
    assert r.scale == 1.0


def test_enter_exit_hold_and_no_short() -> None:
    cfg = RiskConfig(risk_budget_pct=100.0)
    # score above entry: enter; between exit and entry: hold; below exit: leave; short held but shorting off: cover
    r = _size([2.0, 0.5, -0.5, -3.0], [1, 1, 1, 1], [50] * 4, [0.001] * 4, 0.001, held=[0, 7, 9, -4], cfg=cfg)
    assert r.target[1:].tolist() == [7, 0, 0]
    assert r.target[0] > 0


def test_risk_budget_scales_new_exposure_uniformly() -> None:
    # each symbol wants 100,000 (capped); annual vol = 0.01 * sqrt(252 * 390) = 1.5875 -> risk 158,745 each
    cfg = RiskConfig(kelly_fraction=1.0)  # budget 15%: 150,000 of risk for three candidates
    r = _size([2, 2, 2], [1, 1, 1], [100, 100, 100], [0.01] * 3, 0.01, cfg=cfg)
    sig = 0.01 * math.sqrt(252 * 390)
    assert r.scale == pytest.approx(150_000 / (3 * 1000 * 100 * sig), rel=1e-9)
    assert float(np.abs(r.target) @ (np.full(3, 100.0) * sig)) <= 150_000 + 1e-6
    assert r.target.tolist() == [int(1000 * r.scale)] * 3


def test_reduce_only_never_grows() -> None:
    r = _size([2, -3, 2], [1, 1, 1], [50] * 3, [0.001] * 3, 0.001, held=[0, 10, 5], reduce_only=True)
    assert r.target.tolist() == [0, 0, 5]


def test_mismatched_arrays_are_a_clear_error() -> None:
    from algobotd.risk.codes import RiskError

    with pytest.raises(RiskError, match="differ in length") as exc:
        size_targets(np.zeros(3), np.zeros(3), np.ones(3, bool), 1.0, 0.0, np.zeros(2, dtype=np.int64),
                     np.ones(3), 1e6, TradeStats(3), VolEstimator(3, 60.0, 20), 60, CFG)
    assert exc.value.code == "shape"


def test_market_vol_from_the_reference_index_or_the_universe() -> None:
    lam = 0.5 ** (1 / 10.0)
    with_ref, without = VolEstimator(2, 10.0, 2), VolEstimator(2, 10.0, 2)
    closes = [np.array([100.0, 50.0]), np.array([101.0, 49.0]), np.array([99.0, 50.0])]
    spy = [400.0, 404.0, 402.0]
    for c, s in zip(closes, spy):
        with_ref.update(c, np.ones(2, bool), s)
        without.update(c, np.ones(2, bool))
    r1, r2 = math.log(404 / 400), math.log(402 / 404)
    assert with_ref.market_sigma == pytest.approx(math.sqrt(lam * (1 - lam) * r1**2 + (1 - lam) * r2**2))
    m1 = (math.log(1.01) + math.log(0.98)) / 2
    m2 = (math.log(99 / 101) + math.log(50 / 49)) / 2
    assert without.market_sigma == pytest.approx(math.sqrt(lam * (1 - lam) * m1**2 + (1 - lam) * m2**2))
    # per-symbol: EWMA of squared log returns, NaN until min_bars returns were seen
    assert with_ref.sigma(2)[0] == pytest.approx(math.sqrt(lam * (1 - lam) * math.log(1.01) ** 2
                                                           + (1 - lam) * math.log(99 / 101) ** 2))
    assert np.isnan(VolEstimator(1, 10.0, 2).sigma(1)[0])
