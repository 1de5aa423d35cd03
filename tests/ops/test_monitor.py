"""Model monitoring on a real store: actual returns, degradation -> one retrain, PSI drift."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from ops_retrainer import BaselineRetrainer, configs, trending_market

from algobotd.config import MonitorConfig
from algobotd.ops.monitor import Monitor, RetrainController, degraded, fill_actuals, psi, window_metrics
from algobotd.store.writer import StoreWriter

BAR = 60
NS = 1_000_000_000
T0 = int(dt.datetime(2024, 3, 4, 14, 30, tzinfo=dt.UTC).timestamp()) * NS


def add_bars(store: StoreWriter, symbol: str, closes: list[float], t0: int = T0) -> None:
    for k, c in enumerate(closes):
        store.add("bars", (symbol, t0 + k * BAR * NS, c, c, c, c, 1.0, np.nan, np.nan))


def add_prediction(store: StoreWriter, ts: int, symbol: str, model: str, pred: float, actual: float = np.nan) -> None:
    store.add("predictions", (ts, symbol, model, pred, 0.5, "{}", actual))


def unfilled(x: float | None) -> bool:
    return x is None or bool(np.isnan(x))  # the engine writes NaN; row-wise inserts store NULL


async def test_actual_return_filled_only_after_the_horizon(tmp_path: Path) -> None:
    store = StoreWriter(tmp_path / "s.duckdb")
    add_bars(store, "AAA", [100.0, 101.0, 99.0, 102.0])
    add_bars(store, "BBB", [50.0, 55.0])
    # the engine stamps a prediction at the end of the bar it saw: bar k's end = T0 + (k+1)*BAR
    for k in range(4):
        add_prediction(store, T0 + (k + 1) * BAR * NS, "AAA", "m", 0.1)
    add_prediction(store, T0 + BAR * NS, "BBB", "m", 0.1)
    await store.flush()
    assert await store.run(lambda con: fill_actuals(con, 2, BAR)) == 2  # AAA bars 0 and 1 have a bar 2 later
    rows = store.con.execute("SELECT symbol, ts, actual_return FROM predictions ORDER BY symbol, ts").fetchall()
    got = [r[2] for r in rows]
    assert got[0] == pytest.approx(np.log(99.0 / 100.0)) and got[1] == pytest.approx(np.log(102.0 / 101.0))
    assert all(unfilled(x) for x in got[2:])  # horizon not reached yet
    add_bars(store, "BBB", [56.0, 57.0], t0=T0 + 2 * BAR * NS)
    await store.flush()
    assert await store.run(lambda con: fill_actuals(con, 2, BAR)) == 1  # only the newly reachable row
    bbb = store.con.execute("SELECT actual_return FROM predictions WHERE symbol = 'BBB'").fetchone()[0]
    assert bbb == pytest.approx(np.log(56.0 / 50.0))
    await store.close()


def test_degradation_rule_and_window_metrics() -> None:
    rng = np.random.default_rng(0)
    actual = rng.normal(size=2000)
    good = actual + rng.normal(size=2000)
    w = window_metrics(good, actual, 200)
    assert len(w) == 10 and all(0.4 < x["ic"] < 0.9 for x in w) and all(x["hit_rate"] > 0.6 for x in w)
    ics = [x["ic"] for x in w]
    assert degraded(ics, 30, 2.0)[0] is False
    assert degraded([*ics, -0.2], 30, 2.0)[0] is True
    assert degraded(ics[:4] + [-1.0], 30, 2.0) == (False, None)  # too little history to judge


def test_psi_flags_a_shifted_distribution() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=5000)
    assert psi(ref, rng.normal(size=5000)) < 0.02
    assert psi(ref, rng.normal(1.0, 1.0, size=5000)) > 0.25


class ShiftedFeatures:
    def __init__(self, shift: float) -> None:
        rng = np.random.default_rng(2)
        self.ref = {"ret": rng.normal(size=3000)}
        self.cur = {"ret": rng.normal(shift, 1.0, size=3000)}

    def reference(self):
        return self.ref

    def recent(self):
        return self.cur


async def plant_predictions(store: StoreWriter, n_windows: int, window: int, degrade_last: bool) -> None:
    rng = np.random.default_rng(5)
    for k in range(n_windows * window):
        a = rng.normal()
        bad = degrade_last and k >= (n_windows - 1) * window
        p = -a + rng.normal() if bad else a + rng.normal()
        add_prediction(store, T0 + k * NS, f"S{k % 10}", "champion", p, a)
    await store.flush()


async def test_planted_degradation_triggers_exactly_one_retrain_and_worse_is_not_promoted(tmp_path: Path) -> None:
    store = StoreWriter(tmp_path / "s.duckdb")
    await plant_predictions(store, n_windows=12, window=50, degrade_last=True)
    closes = trending_market(600, 6)
    # champion: the short lookback that fits this market; the only challenger is worse
    retrainer = BaselineRetrainer(closes, configs(2)[0], configs(40))
    cfg = MonitorConfig(window_predictions=50, history_windows=30, retrain_cooldown_seconds=0.0)
    monitor = Monitor(store, cfg, BAR, RetrainController(retrainer, cfg.retrain_cooldown_seconds))
    try:
        first = await monitor.run_once()
        assert first["retrain_triggered"] is True
        await monitor.controller.wait()
        for _ in range(3):  # the same degraded window seen again is not a new trigger
            assert (await monitor.run_once())["retrain_triggered"] is False
        assert retrainer.retrains == 1
        (entry,) = monitor.status()["retrains"]
        assert entry["candidate"] == "momentum-L40" and entry["promoted"] is False
        assert entry["metrics"]["oos_ic"] < entry["metrics"]["champion_oos_ic"]
        assert retrainer.promotions == [] and retrainer.champion.lookback == 2
        assert monitor.status()["models"]["champion"]["degraded"] is True
    finally:
        retrainer.close()
        await store.close()


async def test_better_challenger_is_promoted_and_healthy_model_never_retrains(tmp_path: Path) -> None:
    store = StoreWriter(tmp_path / "s.duckdb")
    await plant_predictions(store, n_windows=12, window=50, degrade_last=False)
    retrainer = BaselineRetrainer(trending_market(600, 6), configs(40)[0], configs(2, 40))
    cfg = MonitorConfig(window_predictions=50, retrain_cooldown_seconds=0.0)
    monitor = Monitor(store, cfg, BAR, RetrainController(retrainer, 0.0))
    try:
        assert (await monitor.run_once())["retrain_triggered"] is False
        assert retrainer.retrains == 0
        assert monitor.controller.trigger("operator request")
        await monitor.controller.wait()
        assert retrainer.promotions == ["momentum-L2"] and retrainer.champion.lookback == 2
    finally:
        retrainer.close()
        await store.close()


async def test_feature_drift_triggers_retrain_once_per_cooldown(tmp_path: Path) -> None:
    store = StoreWriter(tmp_path / "s.duckdb")
    events: list[str] = []
    controller = RetrainController(None, 3600.0, on_event=lambda kind, msg: events.append(msg))
    monitor = Monitor(store, MonitorConfig(), BAR, controller, features=ShiftedFeatures(1.5))
    await monitor.run_once()
    await monitor.run_once()
    assert monitor.status()["drift"]["ret"] > 0.25
    assert len(events) == 1 and "feature drift ret PSI" in events[0] and "no retrainer" in events[0]
    await store.close()


async def test_default_drift_source_reads_stored_bar_returns(tmp_path: Path) -> None:
    from algobotd.ops.monitor import StoreBarFeatures

    rng = np.random.default_rng(4)
    store = StoreWriter(tmp_path / "s.duckdb")
    split = T0 + 400 * BAR * NS
    for sym in ("AAA", "BBB"):
        calm = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, 400)))
        wild = calm[-1] * np.exp(np.cumsum(rng.normal(0, 0.004, 400)))  # volatility regime x4
        add_bars(store, sym, [*calm.tolist(), *wild.tolist()])
    await store.flush()
    events: list[str] = []
    source = StoreBarFeatures(store, split - 1)
    monitor = Monitor(store, MonitorConfig(), BAR, RetrainController(None, 3600.0, on_event=lambda k, m: events.append(m)),
                      features=source)
    await monitor.run_once()
    assert monitor.status()["drift"]["bar_return"] > 0.25 and monitor.status()["drifted"] == ["bar_return"]
    assert len(events) == 1
    calm = (await StoreBarFeatures(store, T0 + 200 * BAR * NS).reference())["bar_return"]
    assert len(calm) == 2 * 200  # bars 0..200 of two symbols: 200 returns each, none across symbols
    assert psi(calm[::2], calm[1::2]) < 0.25  # calm against calm: no drift
    await store.close()
