"""Alternative-data freshness reaches status (protocol) and the dashboard header."""

from __future__ import annotations

import msgspec
from rich.text import Text

from algobotd.altdata.hub import AltHub
from algobotd.altdata.sentiment import LexiconScorer
from algobotd.control import protocol as p
from algobotd.domain import News
from tui.widgets.header import append_altdata

NS = 1_000_000_000


def test_status_carries_freshness_and_header_shows_it() -> None:
    hub = AltHub(LexiconScorer())
    hub.add_news([News("a", 100 * NS, ("AAPL",), "Apple beats estimates")], "alpaca_news")
    hub.source("alpaca_options", "options")
    hub.mark_failed("alpaca_options", "HTTP 500")
    alt = hub.status(400 * NS)
    assert alt["sources"]["alpaca_news"] == {"group": "news", "ok": True, "events": 1, "rejected": 0, "errors": 0,
                                             "age_s": 300.0, "last_error": None}
    assert alt["sources"]["alpaca_options"]["ok"] is False and hub.stale_groups() == frozenset({"options"})
    wire = msgspec.json.decode(msgspec.json.encode({
        "mode": "sim", "trading_state": "ACTIVE", "trading_state_reason": "", "equity": 1.0, "cash": 1.0,
        "day_pnl": 0.0, "drawdown": 0.0, "positions": 0, "open_orders": 0, "last_bar_ts": None,
        "feed_connected": True, "broker_connected": True, "model_id": None, "altdata": alt}), type=p.Status)
    t = Text()
    append_altdata(t, wire.altdata)
    assert t.plain == "  alpaca_news ● 5m  alpaca_options ✖"
