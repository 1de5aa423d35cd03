"""Paper broker fill model, order lifecycle, and an end-to-end property test with Portfolio."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from algobotd.brokers.base import Broker, BrokerError, BrokerEvent
from algobotd.brokers.paper import PaperBroker, commission
from algobotd.config import PaperConfig
from algobotd.domain import (
    NS_PER_SECOND,
    BarBatch,
    Fill,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
)
from algobotd.portfolio import Portfolio
from algobotd.symbols import SymbolIndex

DAY0 = int(datetime(2024, 1, 2, 14, 30, tzinfo=timezone.utc).timestamp()) * NS_PER_SECOND
MINUTE = 60 * NS_PER_SECOND
DAY = 86_400 * NS_PER_SECOND
NAN = float("nan")


class Clock:
    def __init__(self, now: int = DAY0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def make_batch(ts: int, symbols: tuple[str, ...], open: float | list[float], high: float | None = None,
               low: float | None = None, close: float | None = None, volume: float | list[float] = 1e6,
               valid: bool | list[bool] = True, bid: float = NAN, ask: float = NAN) -> BarBatch:
    """A batch where scalars apply to every symbol; high/low/close default to the open."""
    n = len(symbols)

    def arr(v: float | list[float] | None, default: np.ndarray) -> np.ndarray:
        return default.copy() if v is None else np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy()

    o = arr(open, np.zeros(n))
    return BarBatch(ts=ts, symbols=symbols, open=o, high=arr(high, o), low=arr(low, o),
                    close=arr(close, o), volume=arr(volume, o), valid=np.broadcast_to(valid, (n,)).copy(),
                    bid=arr(bid, o), ask=arr(ask, o))


def make_broker(**cfg: object) -> tuple[PaperBroker, list[BrokerEvent], Clock]:
    """A connected broker on symbols A, B recording its events."""
    clock = Clock()
    config = PaperConfig(**{"slippage_bps": 1.0, "participation": 1.0, "commission": "none", **cfg})
    broker = PaperBroker(config, SymbolIndex(["A", "B"]), clock=clock)
    broker._connected = True  # connect() is async; tested separately
    events: list[BrokerEvent] = []
    broker.set_sink(events.append)
    return broker, events, clock


SYMS = ("A", "B")


def order(coid: str, side: Side = Side.BUY, qty: int = 100, symbol: str = "A", limit: float | None = None,
          tif: TimeInForce = TimeInForce.DAY, created_ts: int = DAY0) -> OrderRequest:
    typ = OrderType.MARKET if limit is None else OrderType.LIMIT
    return OrderRequest(coid, symbol, side, qty, typ, limit, tif, created_ts=created_ts)


def fills(events: list[BrokerEvent]) -> list[Fill]:
    return [e for e in events if isinstance(e, Fill)]


def updates(events: list[BrokerEvent]) -> list[OrderUpdate]:
    return [e for e in events if isinstance(e, OrderUpdate)]


# --- commissions ------------------------------------------------------------------------------


def test_ib_commission_examples() -> None:
    assert commission("ib", 100, 50.0) == pytest.approx(1.00)  # 0.50 per-share → minimum
    assert commission("ib", 1000, 50.0) == pytest.approx(5.00)
    assert commission("ib", 10_000, 0.10) == pytest.approx(5.00)  # capped at 0.5% of 1,000
    assert commission("alpaca", 1000, 50.0) == 0.0
    assert commission("none", 1000, 50.0) == 0.0


def test_fill_carries_ib_commission() -> None:
    broker, events, _ = make_broker(commission="ib")
    broker.submit_one(order("o1", qty=1000))
    broker.on_batch(make_batch(DAY0 + MINUTE, SYMS, 50.0))
    (f,) = fills(events)
    assert f.commission == pytest.approx(5.0)


# --- market orders ------------------------------------------------------------------------------


def test_market_buy_fills_at_next_open_plus_costs() -> None:
    broker, events, _ = make_broker(slippage_bps=1.0)
    broker.on_batch(make_batch(DAY0, SYMS, 100.0, close=100.0, bid=99.9, ask=100.1))
    assert broker.submit_one(order("o1")).status == OrderStatus.ACCEPTED  # type: ignore[union-attr]
    assert fills(events) == []  # never at the submit-time close
    # this bar's own (wide) quote must not be used: only the quote known before the bar
    broker.on_batch(make_batch(DAY0 + MINUTE, SYMS, 101.0, close=105.0, bid=90.0, ask=110.0))
    (f,) = fills(events)
    half_spread_bps = 0.1 / 100.0 * 1e4  # 10 bps
    assert f.price == pytest.approx(101.0 * (1 + (half_spread_bps + 1.0) / 1e4))
    # a plain float, not a numpy scalar from the quote arrays: the store writes a column of
    # floats as one typed array, a mix of float types value by value
    assert type(f.price) is float and type(f.commission) is float
    assert (f.qty, f.side, f.symbol, f.ts, f.exec_id) == (100, Side.BUY, "A", DAY0 + MINUTE, "o1-100")
    last = updates(events)[-1]
    assert (last.status, last.filled_qty) == (OrderStatus.FILLED, 100)
    assert last.avg_fill_price == pytest.approx(f.price)
    assert broker.open_orders() == []


def test_market_sell_without_known_quote_pays_only_slippage() -> None:
    broker, events, _ = make_broker(slippage_bps=5.0)
    broker.submit_one(order("o1", side=Side.SELL))
    broker.on_batch(make_batch(DAY0 + MINUTE, SYMS, 200.0))
    assert fills(events)[0].price == pytest.approx(200.0 * (1 - 5.0 / 1e4))


def test_stale_symbol_keeps_its_last_quote() -> None:
    broker, events, _ = make_broker(slippage_bps=0.0)
    broker.on_batch(make_batch(DAY0, SYMS, 100.0, bid=99.0, ask=101.0))  # 100 bps half spread
    broker.on_batch(make_batch(DAY0 + MINUTE, SYMS, NAN, volume=NAN, valid=False))
    broker.submit_one(order("o1"))
    broker.on_batch(make_batch(DAY0 + 2 * MINUTE, SYMS, 100.0))
    assert fills(events)[0].price == pytest.approx(101.0)


# --- limit orders -------------------------------------------------------------------------------


def test_buy_limit_rests_until_touched() -> None:
    broker, events, _ = make_broker()
    broker.submit_one(order("o1", limit=95.0))
    broker.on_batch(make_batch(DAY0 + MINUTE, SYMS, 100.0, high=101.0, low=96.0))
    assert fills(events) == [] and broker.open_orders() == [(order("o1", limit=95.0), 0)]
    broker.on_batch(make_batch(DAY0 + 2 * MINUTE, SYMS, 98.0, high=99.0, low=94.0))
    assert fills(events)[0].price == 95.0  # at the limit, no spread or slippage


def test_buy_limit_gap_below_fills_at_open() -> None:
    broker, events, _ = make_broker()
    broker.submit_one(order("o1", limit=95.0))
    broker.on_batch(make_batch(DAY0 + MINUTE, SYMS, 90.0, high=92.0, low=89.0))
    assert fills(events)[0].price == 90.0


def test_sell_limit_is_symmetric() -> None:
    broker, events, _ = make_broker()
    broker.submit_one(order("o1", side=Side.SELL, limit=105.0))
    broker.submit_one(order("o2", side=Side.SELL, limit=105.0))
    broker.on_batch(make_batch(DAY0 + MINUTE, SYMS, 100.0, high=104.99, low=99.0))
    assert fills(events) == []
    broker.on_batch(make_batch(DAY0 + 2 * MINUTE, SYMS, 103.0, high=106.0, low=102.0))
    broker.on_batch(make_batch(DAY0 + 3 * MINUTE, SYMS, 110.0, high=111.0, low=109.0))
    assert [f.price for f in fills(events)] == [105.0, 105.0]  # o2 filled on the same bar as o1


# --- liquidity ----------------------------------------------------------------------------------


def test_partial_fills_follow_participation() -> None:
    broker, events, _ = make_broker(participation=0.1)
    broker.submit_one(order("o1", qty=70))
    for k, (px, vol) in enumerate([(10.0, 300.0), (11.0, 0.0), (12.0, 309.0), (13.0, 1e6)], start=1):
        broker.on_batch(make_batch(DAY0 + k * MINUTE, SYMS, px, volume=vol))
    fs = fills(events)
    assert [f.qty for f in fs] == [30, 30, 10]  # the 0-volume bar filled nothing
    assert len({f.exec_id for f in fs}) == 3
    ups = [u for u in updates(events) if u.status != OrderStatus.ACCEPTED]
    assert [(u.status, u.filled_qty) for u in ups] == [
        (OrderStatus.PARTIALLY_FILLED, 30), (OrderStatus.PARTIALLY_FILLED, 60), (OrderStatus.FILLED, 70)]
    expected_avg = sum(f.qty * f.price for f in fs) / 70
    assert ups[-1].avg_fill_price == pytest.approx(expected_avg)


def test_invalid_bar_fills_nothing() -> None:
    broker, events, _ = make_broker()
    broker.submit_one(order("o1"))
    broker.on_batch(make_batch(DAY0 + MINUTE, SYMS, [100.0, 50.0], valid=[False, True]))
    assert fills(events) == []
    broker.on_batch(make_batch(DAY0 + 2 * MINUTE, SYMS, 100.0, volume=5.0))
    assert [f.qty for f in fills(events)] == [5]  # participation 1.0 of 5 shares


# --- validation and idempotency ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("req", "reason"),
    [
        (order("r1", qty=0), "qty"),
        (order("r2", qty=-5), "qty"),
        (OrderRequest("r3", "A", Side.BUY, 1.5), "qty"),  # type: ignore[arg-type]
        (OrderRequest("r4", "A", Side.BUY, True), "qty"),
        (order("r5", symbol="ZZZ"), "unknown symbol"),
        (OrderRequest("r6", "A", Side.BUY, 10, OrderType.LIMIT), "limit_price"),
        (order("r7", limit=0.0), "limit_price"),
        (order("r8", limit=NAN), "limit_price"),
        (OrderRequest("r9", "A", Side.BUY, 10, OrderType.MARKET, 5.0), "market order"),
        (order(""), "client_order_id"),
        (OrderRequest("r10", "A", "short", 10), "unknown side"),  # type: ignore[arg-type]
        (OrderRequest("r11", "A", Side.BUY, 10, tif="ioc"), "time in force"),  # type: ignore[arg-type]
    ],
)
def test_rejections_carry_a_reason(req: OrderRequest, reason: str) -> None:
    broker, events, _ = make_broker()
    update = broker.submit_one(req)
    assert update is not None and update.status == OrderStatus.REJECTED and reason in update.reason
    assert events == [update] and broker.open_orders() == []
    broker.on_batch(make_batch(DAY0 + MINUTE, SYMS, 100.0))
    assert fills(events) == []


def test_numpy_integer_quantity_is_accepted_and_filled() -> None:
    # any Integral that is not a bool is a quantity (the plain-int check is only the fast path)
    broker, events, _ = make_broker()
    update = broker.submit_one(OrderRequest("n1", "A", Side.BUY, np.int64(7)))  # type: ignore[arg-type]
    assert update is not None and update.status == OrderStatus.ACCEPTED
    broker.on_batch(make_batch(DAY0 + MINUTE, SYMS, 100.0))
    assert [f.qty for f in fills(events)] == [7]


def test_duplicate_client_order_id_never_fills_twice() -> None:
    broker, events, _ = make_broker()
    assert broker.submit_one(order("o1")) is not None
    assert broker.submit_one(order("o1")) is None  # resting: ignored
    broker.on_batch(make_batch(DAY0 + MINUTE, SYMS, 100.0))
    assert broker.submit_one(order("o1")) is None  # filled: still ignored
    broker.on_batch(make_batch(DAY0 + 2 * MINUTE, SYMS, 100.0))
    assert [f.qty for f in fills(events)] == [100]
    broker.submit_one(order("bad", qty=0))
    assert broker.submit_one(order("bad", qty=10)) is None  # a rejected id stays used


def test_submit_before_connect_raises() -> None:
    broker = PaperBroker(PaperConfig(), SymbolIndex(["A"]))
    with pytest.raises(BrokerError) as exc:
        broker.submit_one(order("o1"))
    assert exc.value.code == "disconnected"


# --- time in force and cancel -----------------------------------------------------------------


def test_day_order_expires_next_utc_day_gtc_persists() -> None:
    broker, events, _ = make_broker()
    broker.submit_one(order("day", limit=50.0))
    broker.submit_one(order("gtc", limit=50.0, tif=TimeInForce.GTC))
    broker.on_batch(make_batch(DAY0 + 5 * MINUTE, SYMS, 100.0))  # same day: both rest
    assert {r.client_order_id for r, _ in broker.open_orders()} == {"day", "gtc"}
    broker.on_batch(make_batch(DAY0 + DAY, SYMS, 45.0))  # next day, would fill both
    expired = [u for u in updates(events) if u.status == OrderStatus.EXPIRED]
    assert [u.client_order_id for u in expired] == ["day"] and expired[0].ts == DAY0 + DAY
    assert [f.client_order_id for f in fills(events)] == ["gtc"]


def test_day_order_uses_clock_when_created_ts_missing() -> None:
    broker, events, clock = make_broker()
    clock.now = DAY0 + DAY
    broker.submit_one(order("o1", limit=50.0, created_ts=0))
    broker.on_batch(make_batch(DAY0 + DAY + MINUTE, SYMS, 100.0))
    assert broker.open_orders() != []
    broker.on_batch(make_batch(DAY0 + 2 * DAY, SYMS, 100.0))
    assert broker.open_orders() == [] and updates(events)[-1].status == OrderStatus.EXPIRED


def test_cancel_open_and_ignore_unknown() -> None:
    broker, events, clock = make_broker(participation=0.5)
    broker.submit_one(order("o1", qty=100))
    broker.on_batch(make_batch(DAY0 + MINUTE, SYMS, 10.0, volume=100.0))  # 50 filled
    clock.now = DAY0 + 90 * NS_PER_SECOND
    update = broker.cancel_one("o1")
    assert update is not None and (update.status, update.filled_qty, update.ts) == (
        OrderStatus.CANCELED, 50, clock.now)
    n = len(events)
    assert broker.cancel_one("o1") is None and broker.cancel_one("nope") is None
    broker.on_batch(make_batch(DAY0 + 2 * MINUTE, SYMS, 10.0, volume=100.0))
    assert len(events) == n and sum(f.qty for f in fills(events)) == 50


async def test_async_protocol_and_cancel_all() -> None:
    broker = PaperBroker(PaperConfig(commission="none"), SymbolIndex(["A", "B"]), clock=Clock())
    assert isinstance(broker, PaperBroker) and broker.name == "paper"
    _: Broker = broker  # structural check for type checkers
    events: list[BrokerEvent] = []
    broker.set_sink(events.append)
    assert not broker.connected
    await broker.connect()
    assert broker.connected
    await broker.submit([order("o1"), order("o2", symbol="B"), order("o1")])
    await broker.cancel("o1")
    await broker.cancel("o1")
    await broker.cancel_all()
    statuses = [(u.client_order_id, u.status) for u in updates(events)]
    assert statuses == [("o1", OrderStatus.ACCEPTED), ("o2", OrderStatus.ACCEPTED),
                        ("o1", OrderStatus.CANCELED), ("o2", OrderStatus.CANCELED)]
    broker.on_batch(make_batch(DAY0 + MINUTE, SYMS, 10.0))
    assert fills(events) == []
    await broker.close()
    assert not broker.connected


# --- restart, sink and determinism --------------------------------------------------------------


def test_restore_continues_partial_order_with_fresh_exec_ids() -> None:
    broker, events, _ = make_broker(participation=0.1)
    broker.submit_one(order("o1", qty=50, tif=TimeInForce.GTC))
    broker.on_batch(make_batch(DAY0 + MINUTE, SYMS, 10.0, volume=200.0))  # 20 filled
    saved = [(req, filled, OrderStatus.PARTIALLY_FILLED) for req, filled in broker.open_orders()]
    first = fills(events)

    restarted, events2, _ = make_broker(participation=0.1)
    restarted.restore(saved + [(order("done"), 100, OrderStatus.FILLED)])
    assert restarted.open_orders() == [(order("o1", qty=50, tif=TimeInForce.GTC), 20)]
    assert restarted.submit_one(order("o1", qty=50)) is None
    assert restarted.submit_one(order("done")) is None
    restarted.on_batch(make_batch(DAY0 + 2 * MINUTE, SYMS, 11.0, volume=200.0))  # 20 more
    restarted.on_batch(make_batch(DAY0 + 3 * MINUTE, SYMS, 12.0, volume=1e6))  # last 10
    later = fills(events2)
    assert [f.qty for f in later] == [20, 10]
    assert [f.exec_id for f in first + later] == ["o1-20", "o1-40", "o1-50"]  # no reuse after restart
    port = Portfolio(1e6, SymbolIndex(SYMS))
    assert port.restore(first + later) == 3 and port.qty[0] == 50
    assert updates(events2)[-1].filled_qty == 50 and updates(events2)[-1].status == OrderStatus.FILLED


def test_events_before_sink_are_delivered_later() -> None:
    broker = PaperBroker(PaperConfig(), SymbolIndex(["A"]), clock=Clock())
    broker._connected = True
    broker.submit_one(order("o1"))
    events: list[BrokerEvent] = []
    broker.set_sink(events.append)
    assert [type(e) for e in events] == [OrderUpdate]


def test_sink_reentrancy_new_order_waits_for_next_bar() -> None:
    broker, events, _ = make_broker()

    def sink(e: BrokerEvent) -> None:
        events.append(e)
        if isinstance(e, Fill) and e.client_order_id == "o1":
            broker.submit_one(order("o2", side=Side.SELL))
            broker.cancel_one("o3")

    broker.set_sink(sink)
    broker.submit_one(order("o1"))
    broker.submit_one(order("o3"))
    broker.on_batch(make_batch(DAY0 + MINUTE, SYMS, 10.0))
    assert [f.client_order_id for f in fills(events)] == ["o1"]
    broker.on_batch(make_batch(DAY0 + 2 * MINUTE, SYMS, 12.0))
    assert [f.client_order_id for f in fills(events)] == ["o1", "o2"]


# --- end-to-end property ------------------------------------------------------------------------

CASH = 1_000_000.0
NAMES = ("A", "B", "C")

order_step = st.tuples(
    st.just("order"),
    st.integers(0, 2),
    st.sampled_from([Side.BUY, Side.SELL]),
    st.integers(1, 3000),
    st.one_of(st.none(), st.floats(-0.05, 0.05)),  # limit offset from the last close
    st.sampled_from([TimeInForce.DAY, TimeInForce.GTC]),
)
bar_step = st.tuples(
    st.just("bar"),
    st.lists(st.floats(-0.05, 0.05), min_size=3, max_size=3),  # open gap vs previous close
    st.lists(st.floats(0.0, 0.05), min_size=3, max_size=3),  # range
    st.lists(st.integers(0, 50_000), min_size=3, max_size=3),  # volume
    st.lists(st.booleans(), min_size=3, max_size=3),  # valid (mostly)
    st.booleans(),  # next UTC day?
)
other_step = st.one_of(
    st.tuples(st.just("cancel"), st.integers(0, 40)),
    st.tuples(st.just("dup"), st.integers(0, 40)),
)


# rounds of "a few orders / cancels / duplicate submissions, then a bar", flattened, so that
# most examples actually trade (a flat list of random steps mostly ends before any bar)
rounds = st.lists(
    st.tuples(st.lists(st.one_of(order_step, order_step, other_step), max_size=3), bar_step),
    min_size=1,
    max_size=15,
).map(lambda rs: [step for orders, bar in rs for step in (*orders, bar)])


@settings(max_examples=300, deadline=None)
@given(rounds,
       st.sampled_from(["ib", "alpaca"]), st.sampled_from([0.05, 0.5, 1.0]))
def test_broker_into_portfolio_properties(steps: list[tuple], model: str, participation: float) -> None:
    clock = Clock()
    symbols = SymbolIndex(NAMES)
    broker = PaperBroker(PaperConfig(slippage_bps=2.0, participation=participation, commission=model),
                         symbols, clock=clock)
    broker._connected = True
    port = Portfolio(CASH, symbols)
    requests: dict[str, OrderRequest] = {}
    filled: dict[str, int] = {}
    all_fills: list[Fill] = []
    cash_ref = CASH

    def sink(e: BrokerEvent) -> None:
        nonlocal cash_ref
        if isinstance(e, Fill):
            assert port.apply_fill(e), "every exec_id is new"
            all_fills.append(e)
            filled[e.client_order_id] = filled.get(e.client_order_id, 0) + e.qty
            cash_ref += e.cash_delta
            req = requests[e.client_order_id]
            assert filled[e.client_order_id] <= req.qty
            if req.limit_price is not None:  # never worse than the limit
                assert e.price <= req.limit_price if req.side == Side.BUY else e.price >= req.limit_price
        else:
            assert e.filled_qty == filled.get(e.client_order_id, 0)
        assert port.cash == pytest.approx(cash_ref, rel=1e-12, abs=1e-6)
        check_invariants(port)

    broker.set_sink(sink)
    closes = np.array([50.0, 100.0, 20.0])
    ts = DAY0
    for step in steps:
        if step[0] == "order":
            _, k, side, qty, offset, tif = step
            limit = None if offset is None else round(float(closes[k]) * (1 + offset), 2)
            req = OrderRequest(f"o{len(requests)}", NAMES[k], side, qty,
                               OrderType.MARKET if limit is None else OrderType.LIMIT, limit, tif,
                               created_ts=ts)
            requests[req.client_order_id] = req
            broker.submit_one(req)
        elif step[0] == "bar":
            _, gaps, ranges, vols, valid, next_day = step
            ts = ts + DAY if next_day else ts + MINUTE
            clock.now = ts
            valid_arr = np.array(valid) | np.array([True, False, False])
            opens = np.where(valid_arr, closes * (1 + np.array(gaps)), NAN)  # stale rows are NaN
            highs, lows = opens * (1 + np.array(ranges)), opens * (1 - np.array(ranges))
            batch = BarBatch(ts, NAMES, opens, highs, lows, (highs + lows) / 2,
                             np.where(valid_arr, np.array(vols, float), NAN),
                             valid_arr, lows * 0.999, highs * 1.001)
            broker.on_batch(batch)
            closes = np.where(valid_arr, batch.close, closes)
            port.mark(batch.close, batch.valid)
            port.update_hwm()
            check_invariants(port)
        elif step[0] == "cancel":
            broker.cancel_one(f"o{step[1]}")
        else:  # resubmit a known id, possibly with other terms: must be ignored
            coid = f"o{step[1]}"
            if coid in requests:
                n_before = len(all_fills)
                assert broker.submit_one(OrderRequest(coid, "A", Side.BUY, 1)) is None
                assert len(all_fills) == n_before

    for coid, q in filled.items():
        assert q <= requests[coid].qty
    event(f"fills: {min(len(all_fills), 5)}{'+' if len(all_fills) >= 5 else ''}")
    event(f"partial orders: {any(q < requests[c].qty for c, q in filled.items())}")
    event(f"short at end: {bool((port.qty < 0).any())}")
    assert len({f.exec_id for f in all_fills}) == len(all_fills)
    # exactly once: replaying every fill changes nothing
    before = (port.cash, port.qty.copy(), port.realized.copy(), port.commissions)
    assert port.restore(all_fills) == 0
    assert (port.cash, port.commissions) == (before[0], before[3])
    np.testing.assert_array_equal(port.qty, before[1])
    np.testing.assert_array_equal(port.realized, before[2])
    # and a fresh portfolio rebuilt from the fills agrees
    rebuilt = Portfolio(CASH, SymbolIndex(NAMES))
    assert rebuilt.restore(all_fills + all_fills) == len(all_fills)
    np.testing.assert_array_equal(rebuilt.qty, port.qty)
    assert rebuilt.cash == pytest.approx(port.cash)


def check_invariants(p: Portfolio) -> None:
    eq = p.equity
    tol = 1e-9 * max(1.0, abs(eq), p.initial_cash)
    assert abs((eq - p.initial_cash) - (p.realized_pnl + p.unrealized_pnl - p.commissions)) <= tol
    marks = [p.avg_cost[i] if math.isnan(p.last[i]) else p.last[i] for i in range(len(p.qty))]
    assert abs(p.cash + sum(int(q) * m for q, m in zip(p.qty, marks)) - eq) <= tol
    assert p.drawdown >= 0.0
