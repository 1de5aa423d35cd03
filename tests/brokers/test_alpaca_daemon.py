"""`algobotd run` as a real process against the fake Alpaca: start-up reconciles before it
trades, warms up from Alpaca history, takes live bars, and stops cleanly on SIGTERM.
Plus bench/brokers.py (Alpaca part) still runs (figures printed, never checked)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.brokers.alpaca_fake import FakeAlpaca, iso
from tests.conftest import ROOT, algobotd_cmd

pytestmark = pytest.mark.timeout(120)
MINUTE = 60 * 1_000_000_000


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    f = FakeAlpaca().start()
    f.prices.update({"AAPL": 100.0, "MSFT": 200.0})
    yield f
    f.stop()


def test_daemon_reconciles_then_trades_and_stops(fake: FakeAlpaca, tmp_path: Path, cli_env: dict[str, str]) -> None:
    now = time.time_ns()
    start = now - now % MINUTE - 30 * MINUTE
    fake.history = {s: [{"t": iso(start + k * MINUTE), "o": 100, "h": 101, "l": 99, "c": 100.5, "v": 1000,
                         "n": 1, "vw": 100} for k in range(30)] for s in ("AAPL", "MSFT")}
    fake.positions["AAPL"] = [5.0, 100.0]  # held at Alpaca before the daemon ever ran: adopted
    env = dict(cli_env, APCA_API_KEY_ID=fake.key, APCA_API_SECRET_KEY=fake.secret)
    sets = [a for o in [*fake.config_overrides(), 'broker.kind="alpaca"', 'feed.kind="alpaca"',
                        'feed.symbols=["AAPL", "MSFT"]', "feed.warmup_bars=20", 'logging.format="json"']
            for a in ("--set", o)]
    p = subprocess.Popen(algobotd_cmd("run", "--state-dir", str(tmp_path), *sets), env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert p.stdout is not None
        for line in p.stdout:
            lines.append(line)
            if '"trading"' in line:
                break
        t = now - now % MINUTE + 2 * MINUTE
        fake.push_bars([{"S": s, "t": t, "o": 100, "h": 101, "l": 99, "c": 100, "v": 1000} for s in ("AAPL", "MSFT")])
        time.sleep(1.0)
    finally:
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=60)
    text = "".join(lines) + out
    assert p.returncode == 0, text[-3000:]
    assert "Traceback" not in text
    i_rec = text.index("start-up reconciliation done")
    assert i_rec < text.index("warm-up done") < text.index('"trading"')
    con = duckdb.connect(str(tmp_path / "algobot.duckdb"), read_only=True)
    assert con.execute("SELECT count(DISTINCT ts) FROM bars").fetchone()[0] == 21  # 20 warm-up + 1 live
    # a fresh store adopts the account: its position as an opening fill, its cash as the opening balance
    assert con.execute("SELECT count(*) FROM risk_events WHERE kind = 'reconcile'").fetchone()[0] == 0
    assert con.execute("SELECT client_order_id, qty, price FROM trades WHERE exec_id LIKE 'adopted:PA0000FAKE:AAPL:%'"
                       ).fetchall() == [("adopted-AAPL", 5, 100.0)]
    assert con.execute("SELECT kind, amount, venue_cash FROM cash_events").fetchall() == [("opening", 100_500.0, 100_000.0)]
    states = {r[0] for r in con.execute("SELECT state FROM trading_state").fetchall()}
    assert not states & {"REDUCING", "HALTED"}  # nothing differs from the account


def test_bench_brokers_alpaca_quick() -> None:
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "brokers.py"), "--broker", "alpaca", "--quick"],
                       cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "round trip" in p.stdout and "bars/s" in p.stdout
