"""Incremental engine == batch reference, feature by feature (relative tolerance 1e-9)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from algobotd.config import FeaturesConfig
from algobotd.features.reference import reference_features
from algobotd.features.synthetic import random_walk_batches
from tests.features.helpers import FULL_CFG, arch_daily_batches, parity_failures, run_engine


def test_random_walk_parity_with_gaps_stale_zero_volume_and_late_symbol() -> None:
    batches = random_walk_batches(420, 6, seed=7, late_symbol_at=150, stale_rate=0.08, zero_volume_rate=0.05)
    # the awkward cases really are in the data
    assert any(not b.valid.all() for b in batches)
    assert any((b.volume[b.valid] == 0).any() for b in batches)
    assert len(batches[0].symbols) == 6 and len(batches[-1].symbols) == 7
    assert any(len(b.refs) < 7 for b in batches)  # reference series with gaps
    engine, got = run_engine(batches, FULL_CFG)
    names, ref = reference_features(batches, FULL_CFG)
    assert list(names) == list(engine.names)
    assert parity_failures(names, got, ref) == {}
    # every feature was actually compared on real numbers, not only NaN == NaN
    finite = np.isfinite(ref).any(axis=(0, 1))
    assert finite.all(), [n for n, f in zip(names, finite) if not f]
    late = engine.symbols["LATE"]
    assert np.isfinite(got[-1, late]).sum() > 60  # the late symbol warmed up on its own bars


def test_parity_survives_frequent_exact_refresh() -> None:
    """Re-centring and recomputing the running sums (every 7 batches here) changes nothing."""
    cfg = dataclasses.replace(FULL_CFG, refresh_bars=7)
    batches = random_walk_batches(260, 4, seed=11, late_symbol_at=40)
    engine, got = run_engine(batches, cfg)
    names, ref = reference_features(batches, cfg)
    assert parity_failures(names, got, ref) == {}


def test_parity_checker_catches_a_small_error() -> None:
    batches = random_walk_batches(120, 3, seed=2)
    engine, got = run_engine(batches)
    names, ref = reference_features(batches)
    j = list(names).index("std_20")
    t, i = 100, 1
    assert np.isfinite(got[t, i, j])
    got[t, i, j] *= 1 + 1e-7
    assert set(parity_failures(names, got, ref)) == {"std_20"}


def test_real_market_data_parity_sp500_nasdaq() -> None:
    """Daily S&P 500 and NASDAQ bars from the installed ``arch`` package (not copied into the repo)."""
    pytest.importorskip("arch")
    batches = arch_daily_batches(700)
    cfg = FeaturesConfig(vol_index="")  # no volatility index in this data set: the realised-vol fallback runs
    engine, got = run_engine(batches, cfg)
    names, ref = reference_features(batches, cfg)
    assert parity_failures(names, got, ref) == {}
    j = list(names).index
    assert np.isfinite(got[-1, :, j("beta_idx_60")]).all()
    assert got[-1, 0, j("beta_idx_60")] == pytest.approx(1.0)  # the S&P 500 against itself
    assert 0.5 < got[-1, 1, j("corr_idx_60")] < 1.0  # NASDAQ vs S&P 500
    assert np.isfinite(got[-1, 0, j("idx_rv_pct_120")])
    assert engine.ready.all()


@pytest.mark.parametrize("family", ["price_volume", "microstructure", "cross_asset", "alternative"])
def test_parity_with_one_family_switched_off(family: str) -> None:
    cfg = dataclasses.replace(FULL_CFG, disabled_families=[family], disabled=["ret_1"] if family != "price_volume" else [])
    batches = random_walk_batches(150, 3, seed=21, late_symbol_at=30)
    engine, got = run_engine(batches, cfg)
    names, ref = reference_features(batches, cfg)
    assert not any(s.family == family for s in engine.registry) and got.shape[2] == len(names)
    assert parity_failures(names, got, ref) == {}
