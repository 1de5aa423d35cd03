"""`algobotd run` as a real process: it trades, stops cleanly on SIGTERM, and a restart resumes."""

from __future__ import annotations

import datetime as dt
import signal

import duckdb
import pytest

from tests.daemon_proc import DaemonProcess, clean_env

FAST = "feed.sim.speed=3000"
FROZEN = "feed.sim.speed=0.00001"  # one bar at start, then none for days: the state stays observable


def net_positions(db) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT symbol, sum(CASE WHEN side = 'buy' THEN qty ELSE -qty END) FROM trades GROUP BY 1"
        ).fetchall()
    return {s: int(q) for s, q in rows if q}


@pytest.mark.timeout(180)
def test_run_trade_sigterm_restart_resumes(tmp_path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    d = DaemonProcess(state, FAST, env=clean_env())
    try:
        d.wait_ready()
        d.wait_until(lambda: d.call("status")["positions"] > 0, what="positions from trading")
        status = d.call("status")
        assert status["mode"] == "sim" and status["trading_state"] == "ACTIVE"
        assert status["drawdown_limit"] == 0.10  # risk.max_drawdown_pct, shown next to the drawdown
    finally:
        code = d.stop(signal.SIGTERM)
    assert code == 0
    db = state / "algobot.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("bars", "orders", "trades", "equity", "predictions")}
        bars_before = counts["bars"]
        dupes = con.execute("SELECT count(*) FROM (SELECT symbol, ts FROM bars GROUP BY 1, 2 HAVING count(*) > 1)").fetchone()[0]
        last_ts = con.execute("SELECT max(ts) FROM bars").fetchone()[0]
    assert all(n > 0 for n in counts.values()), counts
    assert dupes == 0
    expected = net_positions(db)
    assert expected, "the first run should leave positions open"

    d2 = DaemonProcess(state, FROZEN, env=clean_env())
    try:
        d2.wait_ready()
        # the first new bar comes at once and may fill orders still resting from the first run;
        # then time stands still
        stored_last = last_ts.replace(tzinfo=dt.UTC).isoformat()
        d2.wait_until(lambda: d2.call("status")["last_bar_ts"] > stored_last, what="the first bar after restart")
        resumed = {p["symbol"]: p["qty"] for p in d2.call("positions")}
    finally:
        assert d2.stop(signal.SIGTERM) == 0
    # positions carried over from the first run plus fills since == every stored fill
    assert resumed == net_positions(db)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM bars").fetchone()[0] >= bars_before
        new_bars = con.execute("SELECT count(DISTINCT ts) FROM bars WHERE ts > ?", [last_ts]).fetchone()[0]
        dupes = con.execute("SELECT count(*) FROM (SELECT symbol, ts FROM bars GROUP BY 1, 2 HAVING count(*) > 1)").fetchone()[0]
        trade_dupes = con.execute("SELECT count(*) - count(DISTINCT exec_id) FROM trades").fetchone()[0]
    assert dupes == 0 and trade_dupes == 0
    assert new_bars == 1  # continued after the last stored bar instead of starting history again


@pytest.mark.timeout(180)
def test_halted_survives_sigkill(tmp_path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    d = DaemonProcess(state, FAST, env=clean_env())
    try:
        d.wait_ready()
        d.wait_until(lambda: d.call("status")["last_bar_ts"] is not None, what="first bar")
        assert d.call("halt", reason="test halt")["trading_state"] == "HALTED"
    finally:
        d.stop(signal.SIGKILL)
    with duckdb.connect(str(state / "algobot.duckdb"), read_only=True) as con:
        orders_before = con.execute("SELECT count(*) FROM orders").fetchone()[0]
    d2 = DaemonProcess(state, FAST, env=clean_env())
    try:
        d2.wait_ready()
        st = d2.call("status")
        assert st["trading_state"] == "HALTED" and st["trading_state_reason"] == "test halt"
        bar0 = st["last_bar_ts"]
        d2.wait_until(lambda: d2.call("status")["last_bar_ts"] != bar0, what="bars while halted")
    finally:
        assert d2.stop(signal.SIGTERM) == 0
    with duckdb.connect(str(state / "algobot.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM orders").fetchone()[0] == orders_before  # sent nothing
