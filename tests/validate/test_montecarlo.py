"""Monte Carlo: scenario generation, identical results for any worker count / Ray, halts counted."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import xml.etree.ElementTree as ET

import duckdb
import numpy as np
import pytest

from algobotd.config import ConfigError, load
from algobotd.feeds.sim import REGIME_DRIFT, REGIME_VOL, REGIMES
from algobotd.validate import montecarlo as mc
from algobotd.validate.paths import path_config, run_chunk
from algobotd.validate.pool import ray_available
from algobotd.validate.scenarios import DT, generate, sp500_log_returns
from tests.conftest import algobotd_cmd

SPEC = mc.McSpec(scenarios=("bull", "crash", "bootstrap"), n=3, symbols=4, bars=40, seed=11, keep_curves=2)


def _rows(paths: list) -> list[tuple]:
    return [tuple(np.asarray(v).tobytes() if isinstance(v, np.ndarray) else v
                  for v in dataclasses.astuple(p)) for p in paths]


@pytest.fixture
def cfg(tmp_path):
    return load(None, [], str(tmp_path / "state"))


def test_regimes_have_the_design_drift_and_vol() -> None:
    for k, name in enumerate(REGIMES):
        m = generate(name, 1, 0, 2, 20_000, 0).market
        mu, sig = REGIME_DRIFT[k], REGIME_VOL[k]
        assert np.std(m) / np.sqrt(DT) == pytest.approx(sig, rel=0.03), name
        # arithmetic annual drift within ~3 standard errors
        se = sig / np.sqrt(20_000 * DT)
        assert abs((np.mean(m) / DT + 0.5 * sig * sig) - mu) < 3.5 * se, name


def test_paths_are_deterministic_and_distinct() -> None:
    a, b = generate("jump", 3, 5, 6, 100, 20), generate("jump", 3, 5, 6, 100, 20)
    assert np.array_equal(a.close, b.close) and np.array_equal(a.volume, b.volume)
    assert not np.array_equal(a.close, generate("jump", 3, 6, 6, 100, 20).close)
    assert not np.array_equal(a.close, generate("jump", 4, 5, 6, 100, 20).close)
    assert (a.high >= np.maximum(a.open, a.close)).all() and (a.low <= np.minimum(a.open, a.close)).all()
    assert (a.bid < a.close).all() and (a.ask > a.close).all() and np.diff(a.ts).min() > 0


def test_jumps_and_bootstrap_of_real_returns() -> None:
    jump = generate("jump", 1, 0, 2, 20_000, 0).market
    assert (jump < -0.06).sum() > 50  # ~2 crash jumps a year of about -8%
    boot = generate("bootstrap", 1, 0, 2, 2_000, 0).market
    real = sp500_log_returns()
    assert real.size > 5000 and np.isin(boot, real).all()  # every day is a real S&P 500 day
    # blocks: consecutive days are mostly consecutive in the source too
    pos = np.searchsorted(np.sort(real), boot)
    assert pos.size == boot.size


def test_same_seed_same_results_with_1_and_2_workers(cfg) -> None:
    one, _ = mc.run_paths(cfg, dataclasses.replace(SPEC, workers=1))
    two, _ = mc.run_paths(cfg, dataclasses.replace(SPEC, workers=2, chunk=1))
    assert len(one) == 9 and _rows(one) == _rows(two)
    # and equal to running the paths right here, in another order and chunking
    here = run_chunk(path_config(cfg), [("crash", 2), ("bull", 0)], 11, 4, 40, 2)
    assert _rows(here) == [_rows(one)[5], _rows(one)[0]]
    assert sum(p.trades for p in one) > 0


@pytest.mark.skipif(not ray_available(), reason="ray is not installed (distributed extra)")
def test_same_results_on_a_local_ray(cfg) -> None:
    import ray

    local, _ = mc.run_paths(cfg, dataclasses.replace(SPEC, workers=1))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray, _ = mc.run_paths(cfg, dataclasses.replace(SPEC, workers=2, ray_address="local"))
    finally:
        ray.shutdown()
    assert _rows(on_ray) == _rows(local)


def test_breaker_trips_and_halts_are_counted(tmp_path) -> None:
    # a 0.2% drawdown limit: the drawdown breaker trips and latches HALTED in most crash paths
    cfg = load(None, ["risk.max_drawdown_pct=0.002", "risk.daily_loss_pct=0.002"], str(tmp_path / "state"))
    paths = run_chunk(path_config(cfg), [("crash", i) for i in range(4)], 5, 6, 60, 0)
    halted = [p for p in paths if p.halts]
    assert halted, "expected at least one halt with a 0.2% drawdown limit"
    for p in paths:
        assert p.halts <= 1  # the latch only moves down, and nothing resumes in a path
        assert p.breaker_trips >= p.halts
    s = mc.summarize_scenario(paths, cfg.risk.max_drawdown_pct)
    assert s["halts_mean"] == pytest.approx(len(halted) / 4)
    assert s["prob_drawdown_beyond_limit"] == pytest.approx(np.mean([p.max_drawdown > 0.002 for p in paths]))


def test_run_montecarlo_writes_result_file_and_report(cfg, tmp_path) -> None:
    out = tmp_path / "mc.duckdb"
    r = mc.run_montecarlo(cfg, dataclasses.replace(SPEC, n=2, workers=1), out)
    assert set(r["scenarios"]) == {"bull", "crash", "bootstrap"}
    with duckdb.connect(str(out), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM mc_paths").fetchone()[0] == 6
        assert con.execute("SELECT count(*) FROM mc_summary").fetchone()[0] == 3
        assert con.execute("SELECT count(*) FROM mc_curves").fetchone()[0] == 6 * 40
        assert con.execute("SELECT kind FROM runs").fetchall() == [("mc",)]
    html = out.with_suffix(".html").read_text()
    assert "crash" in html
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(svgs) == 3 * 4  # equity band, drawdown, return and drawdown histograms per scenario
    for svg in svgs:
        ET.fromstring(svg)  # well-formed: opens in any browser
    assert all("<polyline" in s or "<rect" in s for s in svgs)
    with pytest.raises(ConfigError, match="live store"):
        mc.run_montecarlo(cfg, SPEC, cfg.state_dir / "algobot.duckdb")
    with pytest.raises(ConfigError, match="scenario"):
        mc.parse_scenarios("bull,moon")


def test_cli_json_shape(tmp_path, cli_env) -> None:
    out = tmp_path / "r.duckdb"
    p = subprocess.run(algobotd_cmd("mc", "--state-dir", str(tmp_path / "s"), "--scenarios", "bear,jump", "--n", "2",
                                    "--symbols", "3", "--bars", "30", "--seed", "4", "--workers", "2",
                                    "--out", str(out), "--json"),
                       capture_output=True, text=True, env=cli_env, timeout=240)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert set(r["scenarios"]) == {"bear", "jump"} and r["paths_per_second"] > 0
    for s in r["scenarios"].values():
        assert s["n"] == 2
        for k in ("return_p5", "return_p50", "return_p95", "max_drawdown_p50", "max_drawdown_p95", "sharpe_p50",
                  "halts_mean", "prob_loss"):
            assert isinstance(s[k], float), k
    table = subprocess.run(algobotd_cmd("mc", "--state-dir", str(tmp_path / "s"), "--scenarios", "bear", "--n", "1",
                                        "--symbols", "3", "--bars", "30", "--workers", "1", "--out", str(out)),
                           capture_output=True, text=True, env=cli_env, timeout=240)
    assert table.returncode == 0 and "P(loss)" in table.stdout and "bear" in table.stdout
    bad = subprocess.run(algobotd_cmd("mc", "--n", "0", "--out", str(out)), capture_output=True, text=True,
                         env=cli_env, timeout=60)
    assert bad.returncode == 78 and "--n" in bad.stderr
