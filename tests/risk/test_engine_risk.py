"""The risk layer inside the real engine: the 5% / 8% / 15% scenario, tick-level stops, HALTED
flatten, denials stored and never sent, breakers, outbox rows and the control adapter's view."""

from __future__ import annotations

import json

import pytest

from algobotd.control.adapter import EngineControl
from algobotd.domain import TradingState
from algobotd.feeds import make_feed
from tests.risk.helpers import Rig, config

SYM = ("AAA", "BBB")


async def long_position(rig: Rig, shares: int = 100, price: float = 100.0) -> float:
    """Buy ``shares`` of AAA at ``price`` (no costs); returns the average cost."""
    await rig.bar([price, 50.0])
    await rig.engine.send([rig.order("AAA", shares)])
    await rig.bar([price, 50.0])  # fills at this bar's open
    assert int(rig.engine.portfolio.qty[0]) == shares
    return float(rig.engine.portfolio.avg_cost[0])


async def test_scenario_reduce_exit_halt_each_exactly_once(tmp_path) -> None:
    rig = Rig(tmp_path, config(tmp_path), SYM)
    await rig.start()
    avg = await long_position(rig)
    await rig.bar([avg * 0.949, 50.0])  # -5.1%: soft stop, sell 50
    await rig.bar([avg * 0.95, 50.0], open_=[avg * 0.95, 50.0])  # the 50 fill here; still in the soft zone
    assert int(rig.engine.portfolio.qty[0]) == 50
    await rig.bar([avg * 0.945, 50.0])  # soft zone again: nothing (once per position)
    await rig.bar([avg * 0.919, 50.0])  # -8.1%: hard stop, exit the other 50
    for px in (0.91, 0.90, 0.86):  # no volume: the exit rests; nothing new is sent
        await rig.bar([avg * px, 50.0], volume=0.0)
    assert rig.engine.state.state is TradingState.ACTIVE
    for px in (0.849, 0.84, 0.80):  # -15.1%: HALT, once
        await rig.bar([avg * px, 50.0], volume=0.0)
    assert rig.engine.state.state is TradingState.HALTED
    reasons = await rig.query("SELECT reason, count(*) FROM orders GROUP BY 1 ORDER BY 1")
    assert reasons == [("manual", 1), ("stop:hard", 1), ("stop:soft", 1)]
    trips = await rig.query("SELECT name, state FROM risk_events WHERE kind = 'breaker'")
    assert trips == [("position_loss", "HALTED")]
    stops = await rig.query("SELECT name, threshold FROM risk_events WHERE kind = 'stop' ORDER BY ts")
    assert stops == [("stop:soft", 0.05), ("stop:hard", 0.08)]
    states = await rig.query("SELECT state, actor FROM trading_state")
    assert states == [("HALTED", "breaker:position_loss")]
    # halting cancelled the resting exit; an alert waits in the outbox
    assert await rig.query("SELECT status FROM orders WHERE reason = 'stop:hard'") == [("canceled",)]
    alerts = await rig.query("SELECT kind, level, status, payload FROM alerts WHERE kind = 'risk_state'")
    assert len(alerts) == 1 and alerts[0][1:3] == ("critical", "pending")
    assert json.loads(alerts[0][3])["state"] == "HALTED"
    await rig.close()


async def test_price_update_between_bars_triggers_stop(tmp_path) -> None:
    rig = Rig(tmp_path, config(tmp_path), SYM)
    await rig.start()
    avg = await long_position(rig)
    await rig.engine.on_price_update("AAA", rig.clock.now(), bid=avg * 0.93, ask=avg * 0.931)  # -7%: soft
    await rig.engine.on_price_update("AAA", rig.clock.now(), price=avg * 0.92)  # -8%: hard (the other 50)
    await rig.engine.on_price_update("AAA", rig.clock.now(), price=avg * 0.915)  # nothing more
    rows = await rig.query("SELECT reason, side, qty FROM orders WHERE reason LIKE 'stop%' ORDER BY seq")
    assert rows == [("stop:soft", "sell", 50), ("stop:hard", "sell", 50)]
    await rig.close()


async def test_halted_allows_only_verified_flatten(tmp_path) -> None:
    rig = Rig(tmp_path, config(tmp_path), SYM)
    await rig.start()
    await long_position(rig, shares=30)
    e = rig.engine
    await e.set_state(e.state.escalate(TradingState.HALTED, "test", "operator:uid=1", rig.clock.now()))
    await e.send([rig.order("AAA", 10), rig.order("AAA", -10, reason="signal")])  # nothing new while halted
    await e.send([rig.order("AAA", -40, reason="flatten by x")])  # a "flatten" that would flip: denied
    orders = await e.flatten("operator:uid=1")
    assert [(o.symbol, o.side.value, o.qty) for o in orders] == [("AAA", "sell", 30)]
    rows = await rig.query("SELECT reason, status, status_reason FROM orders WHERE seq > 1 ORDER BY seq")
    assert [r[1] for r in rows] == ["rejected", "rejected", "rejected", "accepted"]
    assert all(r[2].startswith("risk:state_halted") for r in rows[:3])
    sent = {o.client_order_id for o, _ in rig.broker.open_orders()}
    assert sent == {orders[0].client_order_id}  # the broker saw only the flatten
    await rig.bar([100.0, 50.0])
    assert int(e.portfolio.qty[0]) == 0
    # the state never goes up by itself; resume is the operator's
    assert e.state.state is TradingState.HALTED
    await e.set_state(e.state.resume("operator:uid=1", rig.clock.now()))
    assert e.state.state is TradingState.ACTIVE
    await rig.close()


async def test_reducing_denies_growth_and_flip(tmp_path) -> None:
    rig = Rig(tmp_path, config(tmp_path), SYM)
    await rig.start()
    await long_position(rig, shares=30)
    e = rig.engine
    await e.set_state(e.state.escalate(TradingState.REDUCING, "test", "operator:uid=1", rig.clock.now()))
    await e.send([rig.order("AAA", 5), rig.order("AAA", -31), rig.order("BBB", 10), rig.order("AAA", -20)])
    rows = await rig.query("SELECT symbol, qty, status, split_part(status_reason, ':', 2) FROM orders "
                           "WHERE reason = 'manual' AND seq > 1 ORDER BY seq")
    assert rows == [("AAA", 5, "rejected", "state_reducing"), ("AAA", 31, "rejected", "state_reducing"),
                    ("BBB", 10, "rejected", "state_reducing"), ("AAA", 20, "accepted", "")]
    # a second -20 would flip once the first one fills: denied against position + open orders
    await e.send([rig.order("AAA", -20)])
    assert (await rig.query("SELECT status FROM orders ORDER BY seq DESC LIMIT 1")) == [("rejected",)]
    denials = await rig.query("SELECT count(*) FROM risk_events WHERE kind = 'denial'")
    assert denials == [(4,)]
    assert (await rig.query("SELECT count(*) FROM alerts WHERE kind = 'risk_denial' AND status = 'pending'")) == [(4,)]
    await rig.close()


async def test_daily_loss_and_drawdown_include_open_pnl(tmp_path) -> None:
    cfg = config(tmp_path, "risk.daily_loss_pct=0.004", "risk.soft_stop_pct=0.2", "risk.hard_stop_pct=0.3",
                 "risk.halt_position_loss_pct=0.4")
    rig = Rig(tmp_path, cfg, SYM)
    await rig.start()
    avg = await long_position(rig, shares=1000)  # 100,000 of 1,000,000
    await rig.bar([avg * 0.97, 50.0])  # -3% open loss = -3,000 = -0.3% of equity: under the 0.4% limit
    assert rig.engine.state.state is TradingState.ACTIVE
    await rig.bar([avg * 0.95, 50.0])  # -5,000 unrealised = -0.5%: HALT although nothing was realised
    assert rig.engine.state.state is TradingState.HALTED
    assert rig.engine.state.current.actor == "breaker:daily_loss"
    await rig.close()


async def test_control_adapter_shows_breakers_and_stops(tmp_path) -> None:
    cfg = config(tmp_path)
    rig = Rig(tmp_path, cfg, SYM)
    await rig.start()
    avg = await long_position(rig)
    control = EngineControl(rig.engine, make_feed(cfg), "sim")
    risk = control.risk()
    names = {b["name"] for b in risk["breakers"]}
    assert names >= {"daily_loss", "drawdown", "position_loss", "reject_rate", "stale_data", "broker_disconnected",
                     "gross_exposure", "operator"}
    assert all(set(b) == {"name", "value", "threshold", "tripped"} for b in risk["breakers"])
    assert not any(b["tripped"] for b in risk["breakers"])
    (pos,) = control.positions()
    assert pos["soft_stop"] == pytest.approx(avg * 0.95) and pos["hard_stop"] == pytest.approx(avg * 0.92)
    await control.halt("test", "operator:uid=1")
    op = next(b for b in control.risk()["breakers"] if b["name"] == "operator")
    assert op["tripped"] is True
    await rig.broker.close()  # broker link down -> REDUCING would follow, but HALTED is lower: no change
    await rig.engine.risk_tick()
    dis = next(b for b in control.risk()["breakers"] if b["name"] == "broker_disconnected")
    assert dis["tripped"] is True and rig.engine.state.state is TradingState.HALTED
    await rig.close()


async def test_broker_disconnect_moves_to_reducing_and_stays(tmp_path) -> None:
    rig = Rig(tmp_path, config(tmp_path), SYM)
    await rig.start()
    await rig.bar([100.0, 50.0])
    await rig.broker.close()
    await rig.engine.risk_tick()
    assert rig.engine.state.state is TradingState.REDUCING
    await rig.broker.connect()
    await rig.engine.risk_tick()
    assert rig.engine.state.state is TradingState.REDUCING  # latched until an operator resume
    await rig.close()


async def test_restart_halted_cancels_resting_orders_and_keeps_kelly_history(tmp_path) -> None:
    cfg = config(tmp_path)
    rig = Rig(tmp_path, cfg, SYM)
    await rig.start()
    await long_position(rig, shares=40)
    await rig.engine.send([rig.order("AAA", -40)])  # closes the round trip at the next bar
    await rig.bar([110.0, 50.0])  # +10%: a winning round trip
    await rig.engine.send([rig.order("BBB", 100)])  # rests: the next bar never comes before the "crash"
    e = rig.engine
    change = e.state.escalate(TradingState.HALTED, "crash test", "operator:uid=1", rig.clock.now())
    # persist the latch without the cancel that set_state would do: as if killed right after the write
    rig.store.add("trading_state", (change.ts, change.state.value, change.reason, change.actor))
    await rig.close()

    again = Rig(tmp_path, cfg, SYM)
    restored = [o for o in again.engine.open_orders.values()]
    again.broker.restore([(o.request, o.filled, o.status) for o in restored])  # as assemble() does
    await again.start()
    assert again.engine.state.state is TradingState.HALTED and len(restored) == 1
    assert again.engine.risk.trades.wins[0] == 1  # round trips rebuilt from the trades table
    await again.engine.enforce_state_on_start()
    assert again.engine.open_orders == {} and again.broker.open_orders() == []
    await again.bar([50.0, 50.0])
    assert int(again.engine.portfolio.qty[1]) == 0  # the resting buy never filled
    assert await again.query("SELECT status FROM orders WHERE symbol = 'BBB'") == [("canceled",)]
    await again.close()


async def test_halt_during_the_write_ahead_barrier_stops_the_order(tmp_path) -> None:
    import asyncio

    rig = Rig(tmp_path, config(tmp_path), SYM)
    await rig.start()
    await rig.bar([100.0, 50.0])
    e = rig.engine
    req = rig.order("AAA", 10)
    sending = asyncio.create_task(e.send([req]))
    await asyncio.sleep(0)  # the send passed the pre-trade checks and waits for its row to be durable
    assert req.client_order_id in e.open_orders
    await e.set_state(e.state.escalate(TradingState.HALTED, "mid-flight", "operator:uid=1", rig.clock.now()))
    await sending
    assert rig.broker.open_orders() == [] and e.open_orders == {}
    assert await rig.query("SELECT status, status_reason FROM orders WHERE reason = 'manual'") == [
        ("canceled", "risk:state_halted: HALTED before submission")]
    await rig.close()


async def test_daily_loss_counts_from_previous_close_on_daily_bars(tmp_path) -> None:
    """With one bar per day the day's baseline must be the prior close, not this bar's equity."""
    rig = Rig(tmp_path, config(tmp_path, "feed.bar_seconds=86400", "risk.daily_loss_pct=0.02",
                               "risk.max_drawdown_pct=0.5", "risk.max_position_pct=0.6",
                               "risk.max_order_value=600000", "risk.max_gross_pct=1.0"), SYM)
    await rig.start()
    avg = await long_position(rig, shares=5000, price=100.0)  # ~50% of equity in AAA
    start = rig.engine.portfolio.equity
    rig.k = 24 * 60  # the helper's bars are a minute apart: jump to the same time the next day
    await rig.bar([avg * 0.94, 50.0])  # the next day: -6% on half the book = -3% equity
    assert rig.engine.day_start_equity == pytest.approx(start)
    assert rig.engine.state.state is TradingState.HALTED
    assert rig.engine.state.current.actor == "breaker:daily_loss"
    await rig.close()


async def test_restart_with_a_symbol_dropped_from_the_universe(tmp_path) -> None:
    """A position and a resting order in a symbol the feed no longer carries: start-up works and
    the engine goes REDUCING (no prices, no stops there) instead of crashing or ignoring it."""
    rig = Rig(tmp_path, config(tmp_path), SYM)
    await rig.start()
    await rig.bar([100.0, 50.0])
    await rig.engine.send([rig.order("BBB", 100)])
    await rig.bar([100.0, 50.0])
    from algobotd.domain import OrderType
    await rig.engine.send([rig.order("BBB", 10, type_=OrderType.LIMIT, limit=40.0)])  # rests
    await rig.close()
    rig2 = Rig(tmp_path, config(tmp_path), ("AAA",))  # BBB removed from feed.symbols
    await rig2.start()
    assert rig2.engine.outside_universe() == ["BBB"]
    await rig2.engine.enforce_state_on_start()
    assert rig2.engine.state.state is TradingState.REDUCING
    assert rig2.engine.state.current.actor == "breaker:universe"
    await rig2.bar([100.0])  # trading on the rest goes on
    await rig2.close()


async def test_control_actions_wait_for_a_batch_between_write_ahead_and_broker(tmp_path) -> None:
    """cancel-all / flatten from the socket while a batch's orders sit in the write-ahead
    barrier: they run after the batch, so nothing they should have cancelled stays working."""
    import asyncio

    from algobotd.domain import OrderType

    rig = Rig(tmp_path, config(tmp_path), SYM)
    await rig.start()
    await rig.bar([100.0, 50.0])
    lock = asyncio.Lock()
    control = EngineControl(rig.engine, make_feed(rig.cfg), "sim", lock)
    real_barrier = rig.store.barrier

    async def slow_barrier() -> None:
        await asyncio.sleep(0.05)
        await real_barrier()

    rig.store.barrier = slow_barrier  # a slow disk: the window in which the race used to happen

    async def batch_under_lock() -> None:
        async with lock:  # what the daemon does around every batch
            await rig.engine.send([rig.order("AAA", 50, "signal", OrderType.LIMIT, 99.5)])

    task = asyncio.create_task(batch_under_lock())
    await asyncio.sleep(0.01)
    assert (await control.cancel_all("operator:test"))["cancel_requested"] == 1
    await task
    assert rig.broker.open_orders() == []  # the order was sent, then cancelled
    await rig.close()
