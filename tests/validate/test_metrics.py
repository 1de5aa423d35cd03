"""validate/metrics.py against hand-computed values and the DSR paper's worked example."""

from __future__ import annotations

import math

import numpy as np
import pytest

from algobotd.validate import metrics as m

R = np.array([0.01, -0.02, 0.03, 0.00, 0.01])


def test_sharpe_sortino_hit_rate_by_hand() -> None:
    # mean 0.006; squared deviations sum 0.00132 -> sample var 0.00033
    assert m.sharpe(R) == pytest.approx(0.006 / math.sqrt(0.00033), rel=1e-12)
    assert m.sharpe(R, 252) == pytest.approx(0.006 / math.sqrt(0.00033) * math.sqrt(252), rel=1e-12)
    # downside deviation: sqrt(0.02^2 / 5)
    assert m.sortino(R) == pytest.approx(0.006 / math.sqrt(0.0004 / 5), rel=1e-12)
    assert m.hit_rate(R) == 0.75  # the flat bar is no bet
    assert m.sharpe(np.array([0.01, 0.01])) == 0.0  # no dispersion: undefined -> 0
    assert m.sortino(np.array([0.01, 0.02])) == 0.0


def test_drawdown_calmar_turnover() -> None:
    eq = np.array([100.0, 120.0, 90.0, 95.0, 130.0, 104.0])
    assert m.max_drawdown(eq) == pytest.approx(0.25)
    assert m.drawdown_curve(eq)[-1] == pytest.approx(0.2)
    assert m.calmar(0.30, 0.15) == pytest.approx(2.0)
    assert m.calmar(0.30, 0.0) == 0.0
    assert m.turnover(3_000_000.0, 1_000_000.0) == 3.0


def test_summarize_keeps_backtest_contract() -> None:
    s = m.summarize(np.array([101.0, 99.0, 102.0]), 100.0, 86_400)
    assert s["total_return"] == pytest.approx(0.02)
    rets = np.array([0.01, 99 / 101 - 1, 102 / 99 - 1])
    assert s["sharpe"] == pytest.approx(rets.mean() / rets.std(ddof=1) * math.sqrt(252))
    assert s["max_drawdown"] == pytest.approx(1 - 99 / 101)
    assert {"annual_return", "annual_volatility", "sortino", "calmar", "hit_rate"} <= set(s)


def test_ic_rank_ic_icir() -> None:
    assert m.information_coefficient(np.array([1, 2, 3, 4.0]), np.array([1, 3, 2, 4.0])) == pytest.approx(0.8)
    # Spearman only sees ranks: y = [1, 9, 4, 16] ranks as [1, 3, 2, 4]
    assert m.rank_ic(np.array([10, 20, 30, 40.0]), np.array([1, 9, 4, 16.0])) == pytest.approx(0.8)
    assert math.isnan(m.information_coefficient(np.array([1, np.nan, 3.0]), np.array([1, 2, 3.0])))
    pred = np.array([[1, 2, 3, 4.0], [1, 2, 3, 4.0], [4, 3, 2, 1.0]])
    real = np.array([[1, 3, 2, 4.0], [1, 2, 3, 4.0], [1, 3, 2, 4.0]])
    s = m.ic_summary(pred, real)
    series = np.array([0.8, 1.0, -0.8])
    assert s["ic"] == pytest.approx(series.mean())
    assert s["icir"] == pytest.approx(series.mean() / series.std(ddof=1))
    assert s["rank_ic"] == pytest.approx(series.mean())


def test_psr_and_min_trl_by_hand() -> None:
    # SR 0.1 per bar, n = 101, normal: z = 0.1 * 10 / sqrt(1 + 0.5 * 0.01)
    z = 1.0 / math.sqrt(1.005)
    assert m.psr(0.1, 101) == pytest.approx(0.5 * (1 + math.erf(z / math.sqrt(2))), rel=1e-12)
    # negative skew and fat tails widen the SR's standard error -> lower PSR
    assert m.psr(0.1, 101, skew=-1.0, kurt=6.0) < m.psr(0.1, 101)
    assert m.psr(0.0, 500) == pytest.approx(0.5)
    # MinTRL = 1 + (1 - g3 SR + (g4 - 1)/4 SR^2) (z_0.95 / SR)^2
    assert m.min_track_record_length(0.1) == pytest.approx(1 + 1.005 * (1.6448536269514722 / 0.1) ** 2, rel=1e-9)
    assert m.min_track_record_length(-0.1) == math.inf
    # the MinTRL is exactly where PSR reaches the confidence level
    n = m.min_track_record_length(0.08, -0.5, 5.0)
    assert m.psr(0.08, n, -0.5, 5.0) == pytest.approx(0.95, abs=1e-9)


def test_dsr_worked_example_bailey_lopez_de_prado_2014() -> None:
    """'The Deflated Sharpe Ratio' (J. Portfolio Management 2014), numerical example: annualised
    SR 2.5 over 5 years of daily returns (T = 1250), N = 100 trials with annualised variance of
    the trials' SR 1/2, skewness -3, kurtosis 10 -> E[max SR] ~ 0.1132 (daily) and DSR ~ 0.9004."""
    sr = 2.5 / math.sqrt(250)
    sr0 = m.expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=1e-4)
    assert m.dsr(sr, 1250, -3.0, 10.0, 100, 0.5 / 250) == pytest.approx(0.9004, abs=5e-4)
    # one trial: no deflation, DSR == PSR(0)
    assert m.dsr(sr, 1250, -3.0, 10.0, 1, 0.0) == pytest.approx(m.psr(sr, 1250, -3.0, 10.0))


def test_sharpe_stats_on_a_series() -> None:
    rng = np.random.default_rng(0)
    r = rng.normal(0.001, 0.01, 2000)
    s = m.sharpe_stats(r, 252, n_trials=50, var_trials=0.001)
    assert s["sharpe"] == pytest.approx(m.sharpe(r, 252))
    assert 0 <= s["dsr"] <= s["psr"] <= 1  # deflation only lowers it
    assert s["kurtosis"] == pytest.approx(3.0, abs=0.3)


def test_rank_and_moments_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    x = np.round(rng.normal(size=200), 1)  # with ties
    assert np.allclose(m.rankdata(x), stats.rankdata(x))
    r = rng.standard_t(5, 500) * 0.01
    _, skew, kurt, n = m.moments(r)
    assert skew == pytest.approx(stats.skew(r)) and kurt == pytest.approx(stats.kurtosis(r, fisher=False)) and n == 500
