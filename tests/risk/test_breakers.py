"""Breaker readings (unit) and the stale-data breaker inside the engine on simulated time."""

from __future__ import annotations

import datetime as dt

from algobotd.config import RiskConfig
from algobotd.domain import NS_PER_SECOND, TradingState
from algobotd.risk.breakers import Breakers, PortfolioView, market_open, worst_trip
from algobotd.risk.state import TradingStateMachine
from tests.risk.helpers import BAR, T0, Rig, config


def ns(y: int, mo: int, d: int, h: int, mi: int) -> int:
    return int(dt.datetime(y, mo, d, h, mi, tzinfo=dt.UTC).timestamp()) * NS_PER_SECOND


def view(ts: int = T0, equity: float = 100.0, day: float = 100.0, hwm: float = 100.0, worst: float = 0.0,
         connected: bool = True) -> PortfolioView:
    return PortfolioView(ts, equity, day, hwm, 0.0, worst, connected)


def by_name(b: Breakers, v: PortfolioView) -> dict[str, tuple[float, bool]]:
    return {r.name: (r.value, r.tripped) for r in b.check(v)}


def test_market_hours_new_york() -> None:
    assert market_open(ns(2024, 1, 2, 14, 30))  # 09:30 EST
    assert not market_open(ns(2024, 1, 2, 14, 29))
    assert not market_open(ns(2024, 1, 2, 21, 0))  # 16:00 EST
    assert market_open(ns(2024, 7, 1, 13, 30))  # 09:30 EDT
    assert not market_open(ns(2024, 1, 6, 15, 0))  # Saturday


def test_daily_loss_drawdown_and_worst_trip() -> None:
    b = Breakers(RiskConfig())
    r = by_name(b, view(equity=97.1, day=100.0, hwm=105.0))
    assert r["daily_loss"] == (r["daily_loss"][0], False) and abs(r["daily_loss"][0] - 0.029) < 1e-12
    assert abs(r["drawdown"][0] - (1 - 97.1 / 105)) < 1e-12 and not r["drawdown"][1]
    r = by_name(b, view(equity=96.9, day=100.0, hwm=107.7))
    assert r["daily_loss"][1] and r["drawdown"][1]
    state, why = worst_trip(b.last)
    assert state is TradingState.HALTED and {x.name for x in why} == {"daily_loss", "drawdown"}
    b.check(view(connected=False))
    state, why = worst_trip(b.last)
    assert state is TradingState.REDUCING and [x.name for x in why] == ["broker_disconnected"]
    assert worst_trip(b.check(view())) is None


def test_reject_rate_over_a_window() -> None:
    b = Breakers(RiskConfig(reject_window_seconds=60, max_reject_rate=0.5, reject_min_orders=4))
    b.on_sent(T0, 3)
    b.on_reject(T0)
    b.on_reject(T0)
    assert not by_name(b, view(T0))["reject_rate"][1]  # 2 / 3 but fewer than 4 orders
    b.on_sent(T0 + NS_PER_SECOND)
    assert by_name(b, view(T0 + NS_PER_SECOND))["reject_rate"] == (0.5, True)
    assert by_name(b, view(T0 + 61 * NS_PER_SECOND))["reject_rate"] == (0.0, False)  # the window moved on


def test_stale_only_counts_in_market_hours() -> None:
    b = Breakers(RiskConfig(stale_data_seconds=180))
    b.on_data(T0)
    assert by_name(b, view(T0 + 181 * NS_PER_SECOND))["stale_data"] == (181.0, True)
    evening = ns(2024, 1, 2, 22, 0)
    assert by_name(b, view(evening))["stale_data"] == (0.0, False)


def test_latch_moves_down_only() -> None:
    m = TradingStateMachine()
    assert m.escalate(TradingState.REDUCING, "x", "breaker:a", 1) is not None
    assert m.escalate(TradingState.ACTIVE, "x", "breaker:a", 2) is None
    assert m.escalate(TradingState.REDUCING, "x", "breaker:a", 3) is None
    assert m.escalate(TradingState.HALTED, "x", "breaker:b", 4).state is TradingState.HALTED
    assert m.escalate(TradingState.REDUCING, "x", "breaker:a", 5) is None
    assert m.resume("operator:uid=1", 6).state is TradingState.ACTIVE


async def test_engine_goes_reducing_on_stale_data(tmp_path) -> None:
    rig = Rig(tmp_path, config(tmp_path), ("AAA", "BBB"))
    await rig.start()
    await rig.bar([100.0, 50.0])
    late = 180 + 60 + 2  # stale_data_seconds + one bar + the BarClock's grace
    rig.clock.advance_to(T0 + BAR + (late - 1) * NS_PER_SECOND)
    await rig.engine.risk_tick()
    assert rig.engine.state.state is TradingState.ACTIVE
    rig.clock.advance_to(T0 + BAR + late * NS_PER_SECOND)
    await rig.engine.risk_tick()
    assert rig.engine.state.state is TradingState.REDUCING
    assert rig.engine.state.current.actor == "breaker:stale_data"
    rows = await rig.query("SELECT kind, name, state FROM risk_events ORDER BY kind")
    assert rows == [("breaker", "stale_data", "REDUCING"), ("state", "breaker:stale_data", "REDUCING")]
    await rig.close()
