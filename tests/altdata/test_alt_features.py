"""Options open interest / dealer gamma / unusual flags and Form 4 insider features in the engine:
hand-computed values, the 90-day window, NaN for an uncovered or failing source, reference parity."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from algobotd.domain import NS_PER_SECOND, BarBatch, InsiderFiling, OptionsSnapshot
from algobotd.features.alternative import INSIDER_WINDOW_DAYS
from algobotd.features.engine import FeatureEngine
from algobotd.features.reference import reference_features
from algobotd.features.synthetic import random_walk_batches
from tests.altdata.conftest import T0, batch
from tests.features.helpers import parity_failures, run_engine

DAY = 86_400 * NS_PER_SECOND
NEW = ("opt_pcr_oi", "opt_gex", "opt_unusual", "insider_net_value", "insider_buy_ratio", "insider_net_insiders")


def _day(k: int, **events: object) -> BarBatch:
    return dataclasses.replace(batch(T0 + k * DAY, ("AAA", "BBB")), **events)


def _value(engine: FeatureEngine, b: BarBatch, name: str) -> np.ndarray:
    return engine.update(b)[:, engine.names.index(name)].copy()


def test_insider_features_by_hand_with_the_window_and_no_look_ahead() -> None:
    e = FeatureEngine(symbols=("AAA", "BBB"))
    buy = InsiderFiling("AAA", T0 + 2 * DAY + 5, "cik-a", 1000.0, 50_000.0)
    sale = InsiderFiling("AAA", T0 + 10 * DAY + 5, "cik-b", -400.0, -20_000.0)
    cover = InsiderFiling("BBB", T0 + 5, "", 0.0, 0.0)
    got: dict[str, list[np.ndarray]] = {n: [] for n in NEW[3:]}
    for k in range(100):
        events = [f for f in (buy, sale, cover) if T0 + k * DAY <= f.ts < T0 + (k + 1) * DAY]
        b = _day(k, insider=events)
        x = e.update(b)
        for name, series in got.items():
            series.append(x[:, e.names.index(name)].copy())
    v, r, ins = (np.array(got[n]) for n in NEW[3:])
    assert np.isnan(v[:2, 0]).all() and v[0, 1] == 0.0  # AAA unknown to the source until its filing; BBB covered
    assert v[2, 0] == pytest.approx(math.log1p(50.0)) and r[2, 0] == 1.0 and ins[2, 0] == 1.0
    assert v[10, 0] == pytest.approx(math.log1p(30.0))
    assert r[10, 0] == pytest.approx(30.0 / 70.0) and ins[10, 0] == 0.0  # one insider buying, one selling
    # batch k starts at T0 + k days; the buy (published 5 ns into day 2) is 90 days minus 5 ns old at day 92
    last_with_buy = 2 + INSIDER_WINDOW_DAYS
    assert r[last_with_buy, 0] == pytest.approx(30.0 / 70.0)
    assert r[last_with_buy + 1, 0] == -1.0 and ins[last_with_buy + 1, 0] == -1.0
    assert v[last_with_buy + 1, 0] == pytest.approx(-math.log1p(20.0))
    assert (v[:, 1] == 0.0).all() and (r[:, 1] == 0.0).all()  # covered, no trades: 0, not NaN


def test_options_oi_gamma_and_unusual_features() -> None:
    e = FeatureEngine(symbols=("AAA", "BBB"))
    snap = OptionsSnapshot("AAA", T0 + 1, 100.0, 300.0, 0.3, 0.35, 0.25, call_oi=9_999.0, put_oi=19_999.0,
                           gamma_exposure=-2.5e6, unusual=1.0)
    assert np.isnan(_value(e, _day(0), "opt_pcr_oi")).all()  # before any snapshot
    b = _day(1, options=[dataclasses.replace(snap, ts=T0 + DAY + 1)])
    x = e.update(b)
    col = e.names.index
    assert x[0, col("opt_pcr_oi")] == pytest.approx(math.log(2.0))
    assert x[0, col("opt_gex")] == pytest.approx(-math.log1p(2.5))
    assert x[0, col("opt_unusual")] == 1.0 and np.isnan(x[1, col("opt_gex")])
    # IB without the skew probe: no usable vols, yet its open interest counts; no gamma -> NaN, not stale
    ib_like = dataclasses.replace(snap, ts=T0 + 2 * DAY + 1, put_iv_25d=math.nan, call_iv_25d=math.nan,
                                  put_oi=0.0, call_oi=0.0, gamma_exposure=math.nan, unusual=0.0)
    x = e.update(_day(2, options=[ib_like]))
    assert x[0, col("opt_pcr_oi")] == 0.0 and np.isnan(x[0, col("opt_gex")]) and x[0, col("opt_unusual")] == 0.0
    assert x[0, col("opt_iv_skew")] == pytest.approx(0.1)  # the vol features keep the last usable snapshot
    bad = dataclasses.replace(snap, ts=T0 + 3 * DAY + 1, put_oi=-5.0, unusual=7.0)
    x = e.update(_day(3, options=[bad]))
    assert np.isnan(x[0, col("opt_pcr_oi")]) and np.isnan(x[0, col("opt_unusual")])


def test_failing_insider_source_reads_nan_and_recovers() -> None:
    e = FeatureEngine(symbols=("AAA", "BBB"))
    filing = InsiderFiling("AAA", T0 + 5, "cik-a", 10.0, 1_000.0)
    assert _value(e, _day(0, insider=[filing]), "insider_buy_ratio")[0] == 1.0
    down = _day(1, stale_sources=frozenset({"insider"}))
    x = e.update(down)
    assert np.isnan(x[:, [e.names.index(n) for n in NEW[3:]]]).all()
    assert np.isfinite(x[:, e.names.index("ret_1")]).all()  # nothing else is touched
    assert _value(e, _day(2), "insider_buy_ratio")[0] == 1.0  # state kept while masked
    bad = InsiderFiling("AAA", T0 + 3 * DAY, "cik-a", math.nan, 1.0)
    unknown = InsiderFiling("ZZZ", T0 + 3 * DAY, "cik-z", 1.0, 1.0)
    e.update(_day(3, insider=[bad, unknown]))
    assert e.dropped["insider_invalid"] == 1 and e.dropped["insider_unknown_symbol"] == 1


def test_daily_bars_over_a_year_match_the_batch_reference() -> None:
    """Filings enter and leave the 90-day window (some arrive already expired); engine == reference."""
    batches = random_walk_batches(320, 4, seed=5, late_symbol_at=40, bar_seconds=86_400, insider_rate=0.03)
    engine, got = run_engine(batches)
    names, ref = reference_features(batches)
    idx = [names.index(n) for n in NEW]
    assert parity_failures(NEW, got[..., idx], ref[..., idx]) == {}
    ratio = got[..., names.index("insider_buy_ratio")]
    arrivals = np.zeros(ratio.shape, dtype=bool)
    for t, b in enumerate(batches):
        for f in b.insider:
            arrivals[t, engine.symbols[f.symbol]] = True
    moved = np.abs(np.diff(ratio, axis=0)) > 0
    assert (moved & ~arrivals[1:]).any()  # a value changed with no filing that day: expiry really ran
    assert np.isfinite(ref[..., idx]).any(axis=(0, 1)).all()
