"""A real daemon's fills become alerts; killed with alerts pending, a restart delivers them, none twice."""

from __future__ import annotations

import collections
import signal
from pathlib import Path

import duckdb
import pytest
from ops_sinks import HttpSink

from tests.daemon_proc import DaemonProcess, clean_env


def alert_overrides(url: str) -> list[str]:
    return [
        "feed.sim.speed=3000",
        f'alerts.channels=[{{name="hook", kind="webhook", url="{url}"}}]',
        'alerts.routes=[{kinds=["fill"], channels=["hook"]}]',
        "alerts.poll_seconds=0.2", "alerts.retry_base_seconds=0.2", "alerts.retry_max_seconds=1.0",
    ]


def backlog(d: DaemonProcess) -> int:
    return d.call("status")["ops"]["alerts"]["backlog"]


@pytest.mark.timeout(240)
def test_killed_with_alerts_pending_delivers_after_restart_none_twice(tmp_path: Path, http_sink: HttpSink) -> None:
    state = tmp_path / "state"
    state.mkdir()
    d = DaemonProcess(state, *alert_overrides(http_sink.url), env=clean_env())
    try:
        d.wait_ready()
        d.wait_until(lambda: len(http_sink.received) >= 2, 90, "first alerts delivered")
        http_sink.stop()  # the endpoint goes down; fills keep coming
        d.wait_until(lambda: backlog(d) >= 3, 90, "alerts piling up while the endpoint is down")
    finally:
        d.kill()  # SIGKILL: no clean shutdown, no last flush
    delivered_before = set(http_sink.keys())
    with duckdb.connect(str(state / "algobot.duckdb")) as con:
        rows = dict(con.execute("SELECT alert_id, status FROM alerts WHERE channel = 'hook'").fetchall())
        # raised but not routed yet when killed: each will become <id>#hook
        unrouted = {f"{a}#hook" for (a,) in con.execute(
            "SELECT alert_id FROM alerts WHERE channel = '' AND status = 'pending' AND kind = 'fill'").fetchall()}
    pending = {a for a, s in rows.items() if s == "pending"} | unrouted
    assert len(pending) >= 3 and all(a.endswith("#hook") for a in rows)
    assert {a for a, s in rows.items() if s == "sent"} <= delivered_before
    assert not pending & delivered_before

    http_sink.start()
    d2 = DaemonProcess(state, *alert_overrides(http_sink.url), env=clean_env())
    try:
        d2.wait_ready()
        d2.call("halt", reason="test: no new fills")
        d2.wait_until(lambda: backlog(d2) == 0 and pending <= set(http_sink.keys()), 90, "backlog delivered")
    finally:
        code = d2.stop(signal.SIGTERM, timeout=30)
    assert code == 0
    keys = http_sink.keys()
    dupes = [k for k, n in collections.Counter(keys).items() if n > 1]
    assert dupes == [], f"delivered twice: {dupes}"
    with duckdb.connect(str(state / "algobot.duckdb"), read_only=True) as con:
        sent = {a for (a,) in con.execute("SELECT alert_id FROM alerts WHERE channel = 'hook' AND status = 'sent'")
                .fetchall()}
        left = con.execute("SELECT count(*) FROM alerts WHERE channel = 'hook' AND status = 'pending'").fetchone()[0]
    assert pending <= sent and left == 0
    assert set(keys) == sent  # every delivery recorded, every recorded delivery really arrived
    assert all(r.json()["kind"] == "fill" for r in http_sink.received)
