"""Backtest: deterministic for a seed, summary keys, and parity with `run` replaying its bars."""

from __future__ import annotations

import json
import subprocess
import sys

import duckdb
import pytest

from algobotd.backtest import SUMMARY_KEYS, gil_switch_interval, run_backtest
from algobotd.config import ConfigError, load
from tests.conftest import ROOT, algobotd_cmd
from tests.daemon_proc import clean_env

ORDERS = "SELECT client_order_id, symbol, side, qty, status, filled_qty FROM orders ORDER BY client_order_id"
TRADES = "SELECT exec_id, client_order_id, symbol, side, qty, round(price, 9), round(commission, 9) FROM trades ORDER BY exec_id"


def table(db, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


async def test_same_seed_same_results(tmp_path) -> None:
    cfg = load(None, ["feed.sim.symbols=8", "feed.sim.seed=7"], str(tmp_path / "state"))
    a = await run_backtest(cfg, tmp_path / "a.duckdb", bars=400)
    b = await run_backtest(cfg, tmp_path / "b.duckdb", bars=400)
    for k in SUMMARY_KEYS:
        assert a[k] == b[k], k
    assert a["trades"] > 0, "the baseline should trade in 400 bars"
    assert table(tmp_path / "a.duckdb", TRADES) == table(tmp_path / "b.duckdb", TRADES)
    other = await run_backtest(load(None, ["feed.sim.symbols=8", "feed.sim.seed=8"], str(tmp_path / "state")),
                               tmp_path / "c.duckdb", bars=400)
    assert other["final_equity"] != a["final_equity"]


async def test_accounting_reconciles_in_result_file(tmp_path) -> None:
    cfg = load(None, ["feed.sim.symbols=6"], str(tmp_path / "state"))
    r = await run_backtest(cfg, tmp_path / "r.duckdb", bars=300)
    with duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True) as con:
        cash_flow, commission = con.execute(
            "SELECT sum(CASE WHEN side = 'buy' THEN -qty * price ELSE qty * price END) - sum(commission), "
            "sum(commission) FROM trades").fetchone()
        last = con.execute("SELECT equity, cash FROM equity ORDER BY ts DESC LIMIT 1").fetchone()
        filled = con.execute("SELECT sum(filled_qty) FROM orders").fetchone()[0]
        traded = con.execute("SELECT sum(qty) FROM trades").fetchone()[0]
    assert last[1] == pytest.approx(cfg.broker.paper.initial_cash + cash_flow, rel=1e-9)
    assert commission == pytest.approx(r["commission"], rel=1e-9)
    assert filled == traded  # every fill reflected exactly once in its order
    assert r["final_equity"] == pytest.approx(last[0], rel=1e-12)


async def test_backtest_refuses_live_store(tmp_path) -> None:
    cfg = load(None, [], str(tmp_path))
    before = sys.getswitchinterval()
    with pytest.raises(ConfigError, match="live store"):
        await run_backtest(cfg, tmp_path / "algobot.duckdb", bars=10)
    assert sys.getswitchinterval() == before  # the backtest's GIL setting does not outlive it


def test_gil_switch_interval_is_restored_even_on_error() -> None:
    before = sys.getswitchinterval()
    with pytest.raises(RuntimeError):
        with gil_switch_interval(before / 10):
            assert sys.getswitchinterval() == pytest.approx(before / 10)
            raise RuntimeError("boom")
    assert sys.getswitchinterval() == before


def test_ensemble_backtest_without_a_champion_is_refused_before_any_work(tmp_path) -> None:
    """The shipped default is the ensemble: with no trained champion a backtest must say so, not
    quietly report zero trades from an untrained model or train one into the live registry."""
    out = tmp_path / "bt.duckdb"
    p = subprocess.run(algobotd_cmd("backtest", "--state-dir", str(tmp_path / "state"), "--symbols", "3",
                                    "--set", 'model.kind="ensemble"', "--out", str(out)),
                       capture_output=True, text=True, env=clean_env(), timeout=120)
    assert p.returncode == 78, p.stderr
    assert "config error: model.kind:" in p.stderr and "algobotd train" in p.stderr
    assert not out.exists() and not (tmp_path / "state" / "models").exists()


@pytest.mark.timeout(300)
def test_cli_json_and_parity_with_run_replay(tmp_path) -> None:
    out = tmp_path / "bt.duckdb"
    proc = subprocess.run(
        algobotd_cmd("backtest", "--state-dir", str(tmp_path / "s0"), "--symbols", "10", "--seed", "3",
                     "--bars", "600", "--out", str(out), "--json"),
        cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert set(SUMMARY_KEYS) <= set(summary)
    assert summary["trades"] > 0

    # The same bars, replayed through `algobotd run` on simulated time, give the same orders and fills.
    state = tmp_path / "replay-state"
    run = subprocess.run(
        algobotd_cmd("run", "--state-dir", str(state), "--set", "feed.kind=\"replay\"",
                     "--set", f"feed.replay.path=\"{out}\"", "--set", "feed.replay.speed=\"max\""),
        cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-3000:]
    live = state / "algobot.duckdb"
    assert table(live, ORDERS) == table(out, ORDERS)
    assert table(live, TRADES) == table(out, TRADES)
    assert len(table(live, TRADES)) == summary["trades"]


async def test_start_end_selects_whole_sessions(tmp_path) -> None:
    cfg = load(None, ["feed.sim.symbols=3"], str(tmp_path / "state"))
    r = await run_backtest(cfg, tmp_path / "d.duckdb", start="2024-03-04", end="2024-03-05")
    assert r["bars"] == 2 * 390  # two New York sessions of one-minute bars
    with duckdb.connect(str(tmp_path / "d.duckdb"), read_only=True) as con:
        first, last = con.execute(
            "SELECT min(ts), max(ts) FROM bars WHERE ts >= TIMESTAMP '2024-03-04'").fetchone()
    assert str(first) == "2024-03-04 14:30:00" and str(last) == "2024-03-05 20:59:00"
