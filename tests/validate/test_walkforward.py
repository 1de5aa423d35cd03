"""Walk-forward: fold boundaries and label end times never reach the test window; JSON shape."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from algobotd.config import load
from algobotd.validate.signals import close_matrix, purged_kfold
from algobotd.validate.walkforward import WfSpec, _load, make_folds, run_fold, run_walkforward
from tests.conftest import algobotd_cmd

KEYS = ("total_return", "sharpe", "max_drawdown", "turnover", "ic", "buy_and_hold_return")


@settings(max_examples=200, deadline=None)
@given(n=st.integers(50, 3000), train=st.integers(5, 600), test=st.integers(4, 400), purge=st.integers(0, 30),
       horizon=st.integers(1, 10))
def test_fold_boundaries_never_train_at_or_after_the_test_window(n, train, test, purge, horizon) -> None:
    ts = np.cumsum(np.random.default_rng(n).integers(1, 100, n)).astype(np.int64)  # irregular, increasing
    folds = make_folds(ts, train, test, purge, horizon)
    prev_end = -1
    for f in folds:
        assert f.train_start >= 0 and f.train_end <= f.test_start - purge
        assert f.last_train_sample < f.train_end and f.last_train_sample + horizon < f.test_start
        # the label of the last training sample is known strictly before the first test bar
        assert f.label_end_max_ns == ts[f.last_train_sample + horizon] < ts[f.test_start] == f.test_start_ns
        assert f.test_start >= prev_end and f.test_end <= n  # test windows do not overlap
        prev_end = f.test_end


@settings(max_examples=200, deadline=None)
@given(n=st.integers(30, 2000), k=st.integers(2, 8), horizon=st.integers(1, 5), purge=st.integers(0, 10),
       embargo=st.integers(0, 10))
def test_purged_kfold(n, k, horizon, purge, embargo) -> None:
    for train, test in purged_kfold(n, k, horizon, purge, embargo):
        a, b = test.min(initial=n), test.max(initial=-1) + 1
        assert not np.intersect1d(train, test).size
        before = train[train < a]
        assert (before + horizon < a - purge).all() or before.size == 0  # labels end before the block (and purge)
        assert (train[train >= b] >= b + embargo).all()


def test_fold_selection_is_blind_to_the_test_window(tmp_path) -> None:
    """Poison every bar at/after the test window: what the fold learns must not change."""
    cfg = load(None, ["feed.sim.symbols=6", "feed.sim.seed=3"], str(tmp_path / "s"))
    bars = asyncio.run(_load(cfg, None, 700))
    ts, _ = close_matrix(bars)
    fold = make_folds(ts, 300, 200, 5, 1)[0]
    clean = run_fold(cfg, fold, bars, 0, 1, 5, 5)
    poisoned = [b if i < fold.test_start else dataclasses.replace(b, close=b.close * (1 + 0.5 * np.sin(i * np.arange(6))))
                for i, b in enumerate(bars)]
    dirty = run_fold(cfg, fold, poisoned, 0, 1, 5, 5)
    assert clean["params"] == dirty["params"]
    assert clean["strategy"]["ic"] != dirty["strategy"]["ic"]  # the test window itself did change


def test_run_walkforward_result_file_and_shape(tmp_path) -> None:
    cfg = load(None, ["feed.sim.symbols=5", "feed.sim.seed=2"], str(tmp_path / "s"))
    out = tmp_path / "wf.duckdb"
    r = run_walkforward(cfg, WfSpec(bars=800, train_window=300, test_window=200, purge=3, embargo=2, workers=2), out)
    assert len(r["folds"]) == 2
    for f in [*r["folds"], r["overall"]]:
        for k in KEYS:
            assert k in f, k
    for f in r["folds"]:
        assert f["label_end_max_ns"] < f["test_start_ns"]
        assert f["baseline"]["total_return"] is not None
    with duckdb.connect(str(out), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM wf_folds").fetchone()[0] == 2
        assert con.execute("SELECT count(*) FROM wf_equity").fetchone()[0] == 400
    assert "<svg" in out.with_suffix(".html").read_text()
    # the chained overall return is the product of the folds'
    prod = np.prod([1 + f["total_return"] for f in r["folds"]]) - 1
    assert r["overall"]["total_return"] == pytest.approx(prod, rel=1e-9, abs=1e-12)


def test_cli_walkforward_json_on_replayed_data(tmp_path, cli_env) -> None:
    # bars from the simulator, written to Parquet, replayed with --data
    csv = tmp_path / "bars.csv"
    cfg = load(None, ["feed.sim.symbols=4"], str(tmp_path / "s"))
    rows = ["symbol,ts,open,high,low,close,volume"]
    for b in asyncio.run(_load(cfg, None, 600)):
        for i, s in enumerate(b.symbols):
            rows.append(f"{s},{b.ts},{b.open[i]},{b.high[i]},{b.low[i]},{b.close[i]},{b.volume[i]}")
    csv.write_text("\n".join(rows))
    p = subprocess.run(algobotd_cmd("walkforward", "--state-dir", str(tmp_path / "s"), "--data", str(csv),
                                    "--train-window", "250", "--test-window", "150", "--purge", "2", "--embargo", "2",
                                    "--workers", "1", "--out", str(tmp_path / "wf.duckdb"), "--json"),
                       capture_output=True, text=True, env=cli_env, timeout=240)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert isinstance(r["folds"], list) and len(r["folds"]) == 2
    for f in [*r["folds"], r["overall"]]:
        assert set(KEYS) <= set(f)
