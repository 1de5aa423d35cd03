"""tune: OOS IC under purged splits; the trial count deflates the Sharpe ratio."""

from __future__ import annotations

import json
import subprocess

import duckdb
import numpy as np

from algobotd.config import load
from algobotd.validate import metrics
from algobotd.validate.tune import TuneSpec, run_tune, sample_params
from tests.conftest import algobotd_cmd


def test_sample_params_distinct_and_seeded() -> None:
    a = sample_params(np.random.default_rng(0), 30)
    assert a == sample_params(np.random.default_rng(0), 30)
    assert len({(p["lookback"], p["vol_window"]) for p in a}) == 30
    assert all(3 <= p["lookback"] <= 120 and 10 <= p["vol_window"] <= 240 for p in a)


def test_run_tune_trials_feed_dsr(tmp_path) -> None:
    cfg = load(None, ["feed.sim.symbols=6", "feed.sim.seed=1"], str(tmp_path / "s"))
    out = tmp_path / "t.duckdb"
    r = run_tune(cfg, TuneSpec(bars=600, trials=6, folds=3, workers=2), out)
    assert r["trials"] == 6 and len(r["all"]) == 6
    best = r["best"]
    assert best["ic"] == max(t["ic"] for t in r["all"] if t["ic"] is not None)
    assert len(best["fold_ic"]) == 3
    assert 0.0 <= best["dsr"] <= best["psr"] <= 1.0  # more trials can only lower it
    with duckdb.connect(str(out), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM tune_trials").fetchone()[0] == 6
    # the same DSR from the published formula with the trials' Sharpe variance
    srs = np.array([t["sharpe"] for t in r["all"]]) / np.sqrt(metrics.bars_per_year(cfg.feed.bar_seconds))
    assert metrics.expected_max_sharpe(6, float(np.var(srs, ddof=1))) > 0


def test_cli_tune_json(tmp_path, cli_env) -> None:
    p = subprocess.run(algobotd_cmd("tune", "--state-dir", str(tmp_path / "s"), "--symbols", "4", "--bars", "500",
                                    "--seed", "3", "--trials", "4", "--folds", "3", "--workers", "1",
                                    "--out", str(tmp_path / "t.duckdb"), "--json"),
                       capture_output=True, text=True, env=cli_env, timeout=240)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["trials"] == 4 and {"params", "ic", "psr", "dsr"} <= set(r["best"])


def test_tune_on_ray_matches_the_pool(tmp_path) -> None:
    import pytest

    from algobotd.validate.pool import ray_available

    if not ray_available():
        pytest.skip("ray is not installed (distributed extra)")
    import ray

    cfg = load(None, ["feed.sim.symbols=4", "feed.sim.seed=2"], str(tmp_path / "s"))
    pool = run_tune(cfg, TuneSpec(bars=400, trials=3, folds=3, workers=1), tmp_path / "a.duckdb")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = run_tune(cfg, TuneSpec(bars=400, trials=3, folds=3, workers=2, ray_address="local"),
                          tmp_path / "b.duckdb")
    finally:
        ray.shutdown()
    assert on_ray["all"] == pool["all"] and on_ray["best"] == pool["best"]
