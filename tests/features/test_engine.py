"""Engine behaviour: registry and config, warm-up, stale symbols, growth, bad input, references."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from algobotd.config import ConfigError, FeaturesConfig
from algobotd.domain import BarBatch, News, OptionsSnapshot
from algobotd.features.engine import FeatureEngine, full_registry
from algobotd.features.registry import FAMILIES
from algobotd.features.synthetic import random_walk_batches
from tests.features.helpers import FULL_CFG, run_engine

PV_ONLY = FeaturesConfig(disabled_families=["microstructure", "cross_asset", "alternative"],
                         disabled=["beta_idx_20", "corr_idx_20", "beta_idx_60", "corr_idx_60"])


def _subset(b: BarBatch, keep: list[int]) -> BarBatch:
    pick = lambda a: np.asarray(a)[keep]  # noqa: E731
    return BarBatch(b.ts, tuple(b.symbols[i] for i in keep), pick(b.open), pick(b.high), pick(b.low),
                    pick(b.close), pick(b.volume), pick(b.valid), pick(b.bid), pick(b.ask), dict(b.refs))


def _with(b: BarBatch, i: int, **changes: float) -> BarBatch:
    arrays = {k: np.array(getattr(b, k), dtype=float) for k in ("open", "high", "low", "close", "volume")}
    for k, v in changes.items():
        arrays[k][i] = v
    return dataclasses.replace(b, **arrays, valid=b.valid.copy())


def test_registry_has_four_families_and_at_least_60_features() -> None:
    reg = full_registry()
    assert len(reg) >= 60
    assert {s.family for s in reg} == set(FAMILIES)
    assert all(len(reg.family(f)) >= 5 for f in FAMILIES)
    allowed = {"bars", "quotes", "trades", "news", "options", "insider"}
    assert all(i in allowed or i.startswith("ref:") for s in reg for i in s.inputs)
    proxies = [s for s in reg if s.proxy]
    assert proxies and all(s.family == "microstructure" and s.inputs == ("bars",) for s in proxies)
    assert reg.longest_window >= 60
    rows = reg.to_json()
    assert set(rows[0]) >= {"name", "family", "window", "inputs"} and isinstance(rows[0]["inputs"], list)


def test_config_switches_families_and_features_off() -> None:
    eng = FeatureEngine(FeaturesConfig(disabled_families=["alternative"], disabled=["ret_1", "spread_bps"]))
    assert "ret_1" not in eng.names and "spread_bps" not in eng.names
    assert not any(n.startswith(("news_", "opt_")) for n in eng.names)
    assert eng.alt is None  # a switched-off family is not computed at all
    X = eng.update(random_walk_batches(1, 3)[0])
    assert X.shape == (3, len(full_registry()) - len(full_registry().family("alternative")) - 2)
    with pytest.raises(ConfigError, match="features.disabled"):
        FeatureEngine(FeaturesConfig(disabled=["no_such_feature"]))


def test_switching_a_family_off_leaves_the_other_families_values_unchanged() -> None:
    """The families share state through the core (windows, the 60-bar extremes): each one
    must compute the same values whichever others run."""
    batches = random_walk_batches(150, 6, seed=3, late_symbol_at=70)
    full = FeatureEngine(FeaturesConfig())
    for b in batches:
        full.update(b)
    for family in FAMILIES:
        eng = FeatureEngine(FeaturesConfig(disabled_families=[family]))
        for b in batches:
            eng.update(b)
        cols = [full.names.index(n) for n in eng.names]
        assert len(cols) < len(full.names)
        assert np.allclose(eng.X, full.X[:, cols], rtol=1e-12, atol=0.0, equal_nan=True), family


def test_ready_mask_and_warmup() -> None:
    batches = random_walk_batches(80, 4, seed=5, stale_rate=0.0, zero_volume_rate=0.0)
    eng = FeatureEngine(PV_ONLY)
    assert eng.warmup == 61
    for t, b in enumerate(batches):
        X = eng.update(b)
        assert eng.ready.tolist() == [t + 1 >= 61] * 4
        if t + 1 < 61:
            assert np.isnan(X[:, eng.names.index("ret_60")]).all()  # NaN until its window is full
        else:
            assert np.isfinite(X).all()  # ready: every bar-only feature has a value


def test_stale_symbol_keeps_state_and_is_never_fed_a_fake_bar() -> None:
    batches = random_walk_batches(150, 3, seed=9, stale_rate=0.0)
    gappy = []
    for t, b in enumerate(batches):
        if 60 <= t < 70:  # symbol 1 misses ten bars
            v = b.valid.copy()
            v[1] = False
            b = dataclasses.replace(b, valid=v, close=np.where(v, b.close, np.nan))
        gappy.append(b)
    eng = FeatureEngine(PV_ONLY)
    for t, b in enumerate(gappy):
        before = eng.X.copy()
        eng.update(b)
        if 60 <= t < 70:
            assert eng.stale.tolist() == [False, True, False]
            assert np.array_equal(eng.X[1], before[1], equal_nan=True)  # held, not recomputed
    # the symbol's state is exactly that of its own bars, as if the gap never existed
    alone = FeatureEngine(PV_ONLY)
    for t, b in enumerate(batches):
        if not 60 <= t < 70:
            alone.update(_subset(b, [1]))
    assert np.array_equal(eng.X[1], alone.X[0], equal_nan=True)


def test_symbol_added_at_runtime_grows_arrays_without_touching_others() -> None:
    batches = random_walk_batches(120, 3, seed=4, late_symbol_at=50)
    eng, got = run_engine(batches, PV_ONLY)
    base, base_got = run_engine([_subset(b, [0, 1, 2]) for b in batches], PV_ONLY)
    assert eng.X.shape[0] == 4 and eng.sequence.window().shape[0] == 4
    assert np.array_equal(got[:, :3], base_got, equal_nan=True)
    assert np.isnan(got[49, 3]).all() and not np.isnan(got[-1, 3]).all()
    eng.add_symbols(["NEW1", "NEW2"])
    assert eng.X.shape == (6, len(eng.names)) and eng.ready.size == 6 and not eng.ready[4:].any()


def test_batch_symbol_order_does_not_matter() -> None:
    batches = random_walk_batches(90, 4, seed=6)
    perm = [2, 0, 3, 1]
    eng_a, got_a = run_engine(batches, FULL_CFG)
    eng_b = FeatureEngine(FULL_CFG)
    eng_b.add_symbols(batches[0].symbols)
    for b in batches:
        p = _subset(b, perm)
        p = dataclasses.replace(p, news=b.news, options=b.options, insider=b.insider,
                                flow=None if b.flow is None else type(b.flow)(*(np.asarray(a)[perm] for a in (
                                    b.flow.ofi, b.flow.bid_size, b.flow.ask_size, b.flow.buy_volume,
                                    b.flow.sell_volume))))
        rows = eng_b.update(p)
        assert np.array_equal(rows, eng_b.X[perm], equal_nan=True)  # returned in the batch's order
    assert np.array_equal(eng_a.X, eng_b.X, equal_nan=True)


def test_bad_input_is_dropped_counted_and_never_reaches_the_state() -> None:
    batches = random_walk_batches(100, 3, seed=8, stale_rate=0.0)
    bad = {20: dict(close=np.nan), 30: dict(low=-1.0), 40: dict(high=1.0, low=2.0),
           50: dict(volume=-5.0)}
    b60 = batches[60]
    bad[60] = dict(high=(b60.low[1] + min(b60.open[1], b60.close[1])) / 2)  # above low, below open/close
    dirty, clean = [], []
    for t, b in enumerate(batches):
        if t in bad:
            dirty.append(_with(b, 1, **bad[t]))
            v = b.valid.copy()
            v[1] = False
            clean.append(dataclasses.replace(b, valid=v))
        else:
            dirty.append(b)
            clean.append(b)
        if t == 70:
            dirty.append(dataclasses.replace(b, close=b.close * 2))  # same ts again
        if t == 80:
            dirty.append(dataclasses.replace(batches[75], close=b.close * 3))  # older ts
    eng_dirty, _ = run_engine(dirty, FULL_CFG)
    eng_clean, _ = run_engine(clean, FULL_CFG)
    assert eng_dirty.dropped == {"nan": 1, "non_positive_price": 1, "high_below_low": 1, "negative_volume": 1,
                                 "ohlc_inconsistent": 1, "duplicate_batch": 1, "out_of_order_batch": 1}
    assert np.array_equal(eng_dirty.X, eng_clean.X, equal_nan=True)
    assert eng_clean.dropped == {}


def test_missing_reference_series_give_nan_and_are_flagged() -> None:
    cfg = dataclasses.replace(FULL_CFG, dollar="DXY", sectors=["S000=XLV"])  # neither is in the data
    batches = random_walk_batches(80, 2, seed=1, ref_gap_rate=0.0)
    batches[40].refs["VIX"] = -3.0  # invalid value: dropped and counted
    eng, got = run_engine(batches, cfg)
    j = eng.names.index
    for name in ("usd_mom_5", "usd_mom_20", "sector_rs_20", "sym_vs_sector_20"):
        assert np.isnan(got[:, :, j(name)]).all()
    assert np.isfinite(got[-1, :, j("yc_slope")]).all() and np.isfinite(got[-1, :, j("vix_level")]).all()
    status = eng.status()
    assert set(status["missing_refs"]) == {"DXY", "XLV"} and status["ref_values_dropped"] == 1


def test_event_inputs_for_unknown_symbols_and_invalid_snapshots_are_counted() -> None:
    b = random_walk_batches(1, 2, news_rate=0.0, options_rate=0.0, stale_rate=0.0)[0]
    b.news = [News("x", b.ts, ("ZZZ",), "h", sentiment=0.5), News("y", b.ts, ("S000",), "h", sentiment=float("nan")),
              News("z", b.ts, ("S001",), "h", sentiment=0.5)]
    b.options = [OptionsSnapshot("ZZZ", b.ts, 1, 1, 0.2, 0.2, 0.2), OptionsSnapshot("S000", b.ts, -1, 1, 0.2, 0.2, 0.2)]
    eng = FeatureEngine()
    X = eng.update(b)
    assert eng.dropped == {"news_unknown_symbol": 1, "news_bad_sentiment": 1, "options_unknown_symbol": 1,
                           "options_invalid": 1}
    assert X[1, eng.names.index("news_sent")] == 0.5 and X[0, eng.names.index("news_sent")] == 0.0
    assert np.isnan(X[:, eng.names.index("opt_pcr")]).all()


def test_sequence_buffer_holds_the_last_feature_vectors() -> None:
    batches = random_walk_batches(70, 3, seed=2)
    eng = FeatureEngine(dataclasses.replace(FULL_CFG, sequence_length=60))
    history = []
    for b in batches:
        eng.update(b)
        history.append(eng.X.copy())
    win = eng.sequence.window()
    assert win.shape == (3, 60, len(eng.names)) and np.shares_memory(win, eng.sequence.buf)
    assert win.dtype == np.float32  # what the sequence models consume
    assert np.array_equal(win, np.stack(history[-60:], axis=1).astype(np.float32), equal_nan=True)
    assert np.array_equal(eng.sequence.mask()[:, -1], batches[-1].valid)


def test_memory_is_linear_in_symbols() -> None:
    small, big = FeatureEngine(), FeatureEngine()
    small.add_symbols([f"A{i}" for i in range(100)])
    big.add_symbols([f"A{i}" for i in range(200)])
    assert big.nbytes / small.nbytes == pytest.approx(2.0, rel=0.01)


def test_a_batch_with_every_symbol_stale_changes_no_symbol_state() -> None:
    batches = random_walk_batches(40, 3, seed=12, stale_rate=0.0)
    eng = FeatureEngine(FULL_CFG)
    for b in batches[:30]:
        eng.update(b)
    before = eng.X.copy()
    b = batches[30]
    empty = dataclasses.replace(b, valid=np.zeros(3, dtype=bool), close=np.full(3, np.nan))
    eng.update(empty)
    assert eng.stale.all() and np.array_equal(eng.X, before, equal_nan=True)
    assert eng.dropped == {}  # stale is not bad input
