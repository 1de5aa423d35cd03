"""Widget logic that the end-to-end tests do not pin down exactly."""

from __future__ import annotations

from datetime import UTC, datetime

from textual.app import App, ComposeResult

from algobotd.control import protocol as p
from tui import fmt
from tui.widgets.events import EventLog
from tui.widgets.header import StatusHeader
from tui.widgets.ops import OpsTable
from tui.widgets.positions import PositionsTable


def status(**kw: object) -> p.Status:
    base: dict[str, object] = dict(
        mode="paper", trading_state="ACTIVE", trading_state_reason="", equity=1e6, cash=5e5, day_pnl=0.0,
        drawdown=0.0, positions=0, open_orders=0, last_bar_ts="2024-01-02T15:30:00Z", feed_connected=True,
        broker_connected=True, model_id="m", bar_seconds=60,
    )
    base.update(kw)
    return p.Status(**base)  # type: ignore[arg-type]


def test_feed_lag() -> None:
    now = datetime(2024, 1, 2, 15, 31, 5, tzinfo=UTC)
    h = StatusHeader(lambda: now)
    h._status = status()
    assert h.lag_seconds() == 5.0  # 65 s since the bar opened, minus its 60 s length
    h._status = status(feed_lag_s=0.25)
    assert h.lag_seconds() == 0.25  # the engine's own figure wins
    h._status = status(mode="sim")
    assert h.lag_seconds() is None  # simulated time: wall-clock lag is meaningless
    h._status = status(last_bar_ts=None)
    assert h.lag_seconds() is None


def test_fmt() -> None:
    assert fmt.money(1234.5) == "1,234.50"
    assert fmt.money(-1234.5, signed=True) == "-1,234.50"
    assert fmt.money(12345.0, signed=True, compact=True) == "+12.3k"
    assert fmt.money(None) == "-"
    assert fmt.pct(0.0123, signed=True) == "+1.23%"
    assert fmt.hms("2024-01-02T15:30:00+00:00") == fmt.hms("2024-01-02T15:30:00Z") == "15:30:00"
    assert fmt.hms("garbage") == "-"
    assert fmt.duration(0.8) == "0.8s" and fmt.duration(300) == "5m"


class Harness(App[None]):
    def compose(self) -> ComposeResult:
        yield PositionsTable(id="positions")
        yield EventLog(id="events")


def row(sym: str, qty: int, last: float | None = 10.0) -> p.PositionRow:
    return p.PositionRow(sym, qty, 9.0, last, None if last is None else qty * last,
                         None if last is None else qty * (last - 9.0), 8.5, 8.0)


async def test_positions_table_in_place() -> None:
    app = Harness()
    async with app.run_test() as pilot:
        t = app.query_one(PositionsTable)
        t.show([row("AAA", 1), row("BBB", 2)])
        await pilot.pause()
        assert [str(k.value) for k in t.rows] == ["AAA", "BBB"]
        t.move_cursor(row=1)
        t.show([row("AAA", 1, 11.0), row("BBB", 2), row("CCC", 3)])  # update + append
        await pilot.pause()
        assert [str(k.value) for k in t.rows] == ["AAA", "BBB", "CCC"]
        assert t.cursor_row == 1  # the user's place is kept
        assert str(t.get_cell("AAA", "last")) == "11.00"
        t.show([row("BBB", 2), row("CCC", 3, None)])  # removal; a stale price
        await pilot.pause()
        assert [str(k.value) for k in t.rows] == ["BBB", "CCC"]
        assert str(t.get_cell("CCC", "last")) == "-" and str(t.get_cell("CCC", "upnl")) == "-"
        t.show([row("CCC", 3), row("BBB", 2)])  # reorder
        await pilot.pause()
        assert [str(k.value) for k in t.rows] == ["CCC", "BBB"]


async def test_event_log_appends_only_new() -> None:
    app = Harness()
    async with app.run_test() as pilot:
        log = app.query_one(EventLog)
        ev = [p.Event(f"2024-01-02T15:{i:02d}:00Z", "fill", f"fill {i}") for i in range(5)]
        log.show(ev[:3])
        await pilot.pause()
        log.show(ev[1:5])  # sliding window: two already shown, two new
        await pilot.pause()
        log.show(ev[1:5])  # a repeat (heartbeat / reconnect) adds nothing
        await pilot.pause()
        lines = [strip.text for strip in log.lines]
        assert [line.split()[-1] for line in lines if line.strip()] == ["0", "1", "2", "3", "4"]


class OpsHarness(App[None]):
    def compose(self) -> ComposeResult:
        yield OpsTable(id="ops")


async def test_ops_table_shows_jobs_alerts_and_sources() -> None:
    ops = {
        "calendar": "XNYS", "market_open": False, "entries_allowed": False,
        "jobs": [{"id": "nightly_retrain", "next_run": "2024-01-02T21:30:00+00:00", "last_result": None,
                  "last_error": "boom"}],
        "alerts": {"backlog": 3, "last_error": "smtp down"},
        "monitor": {"retraining": True, "drifted": ["ret_5"]},
    }
    altdata = {"sources": {"news": {"ok": True, "age_s": 12.0}}}
    app = OpsHarness()
    async with app.run_test() as pilot:
        t = app.query_one(OpsTable)
        model = {"model_id": "ens-1", "ready": False, "training": True, "recent_ic": {}}
        t.show(status(ops=ops, altdata=altdata, model=model))
        await pilot.pause()
        keys = [str(k.value) for k in t.rows]
        assert keys == ["market", "entries", "job-nightly_retrain", "alerts", "monitor", "model", "src-news"]
        assert str(t.get_cell("model", "state")) == "training"
        assert str(t.get_cell("job-nightly_retrain", "state")) == "error"
        assert str(t.get_cell("alerts", "state")) == "3" and str(t.get_cell("alerts", "detail")) == "smtp down"
        assert str(t.get_cell("monitor", "detail")) == "drifted: ret_5"
        assert str(t.get_cell("src-news", "detail")) == "age 12s"
        t.show(status())  # a daemon without the ops section: the table empties instead of failing
        await pilot.pause()
        assert list(t.rows) == []
