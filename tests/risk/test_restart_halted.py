"""A real `algobotd run`: halted with orders resting, SIGKILLed, started again: it comes back HALTED,
cancels what was resting, sends nothing until an operator resume, then trades again."""

from __future__ import annotations

import signal

import duckdb
import pytest

from tests.daemon_proc import DaemonProcess, clean_env

FAST = "feed.sim.speed=3000"


def q(db, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.mark.timeout(240)
def test_restart_while_halted_sends_nothing_until_resume(tmp_path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    db = state / "algobot.duckdb"
    d = DaemonProcess(state, FAST, env=clean_env())
    try:
        d.wait_ready()
        d.wait_until(lambda: d.call("status")["positions"] > 0, what="positions from trading")
        assert d.call("halt", reason="risk test halt")["trading_state"] == "HALTED"
    finally:
        d.stop(signal.SIGKILL)
    max_seq = q(db, "SELECT max(seq) FROM orders")[0][0]
    assert max_seq and q(db, "SELECT state, reason FROM trading_state ORDER BY ts DESC, rowid DESC LIMIT 1") == [
        ("HALTED", "risk test halt")]

    d2 = DaemonProcess(state, FAST, env=clean_env())
    try:
        d2.wait_ready()
        st = d2.call("status")
        assert st["trading_state"] == "HALTED" and st["trading_state_reason"] == "risk test halt"
        risk = d2.call("risk")
        assert any(b["name"] == "operator" and b["tripped"] for b in risk["breakers"])
        assert d2.call("orders") == []  # whatever rested was cancelled at start-up
        first = st["last_bar_ts"]
        d2.wait_until(lambda: d2.call("status")["last_bar_ts"] > first, what="bars while halted")
        bars = d2.call("status")["last_bar_ts"]
        d2.wait_until(lambda: d2.call("status")["last_bar_ts"] > bars, what="more bars while halted")
        fills_halted = _fills(d2)
        assert d2.call("resume", confirm="RESUME")["trading_state"] == "ACTIVE"
        d2.wait_until(lambda: _fills(d2) > fills_halted, timeout=90, what="fills after resume")
    finally:
        assert d2.stop(signal.SIGTERM) == 0
    # the store is readable again: nothing was ordered between the restart and the resume
    resumed_at = q(db, "SELECT max(ts) FROM trading_state WHERE state = 'ACTIVE'")[0][0]
    early = q(db, f"SELECT count(*) FROM orders WHERE seq > {max_seq} AND ts < '{resumed_at}'")[0][0]
    late = q(db, f"SELECT count(*) FROM orders WHERE seq > {max_seq} AND ts >= '{resumed_at}'")[0][0]
    assert early == 0 and late > 0
    # what was resting at the SIGKILL was cancelled at start-up, never left open
    assert q(db, "SELECT count(*) FROM orders WHERE status IN ('new', 'accepted', 'partially_filled') "
                 f"AND seq <= {max_seq}")[0][0] == 0
    states = [r[0] for r in q(db, "SELECT state FROM trading_state ORDER BY ts, rowid")]
    assert states[-2:] == ["HALTED", "ACTIVE"]


def _fills(d: DaemonProcess) -> int:
    return sum(1 for e in d.call("events", limit=500) if e["kind"] == "fill")
