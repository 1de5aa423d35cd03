"""IB feed + broker wired into the real engine and store (assemble), against the fake TWS:
bars stream into batches, an order's fill reaches portfolio and store, a disconnect puts the
engine in REDUCING and a fill from the gap is recovered exactly once, a restart with an order
open at IB reconciles without resubmitting, and a position changed outside is detected."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from algobotd.assembly import Assembly, assemble
from algobotd.brokers.ib import IBBroker
from algobotd.brokers.reconcile import Reconciler, start_reconciliation
from algobotd.config import Config, load
from algobotd.domain import NS_PER_SECOND, BarBatch, OrderRequest, OrderStatus, OrderType, Side, TradingState
from algobotd.feeds.ib import IBFeed
from algobotd.store.writer import StoreWriter
from tests.brokers.ib_fake import FakeTWS
from tests.brokers.test_account import assert_adopted
from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(90)
SYMBOLS = ["AAPL", "MSFT"]


def config(tmp_path: Path, port: int, *more: str) -> Config:
    return load(None, [*more, 
        'feed.kind="ib"', 'broker.kind="ib"', f"feed.symbols={SYMBOLS!r}".replace("'", '"'), "feed.bar_seconds=10",
        "feed.grace_seconds=1.0", "feed.warmup_bars=0", f"ib.port={port}", 'ib.account="DU1234567"',
        "ib.timeout_seconds=2.0", "ib.reconnect_initial_seconds=0.05", "ib.reconnect_max_seconds=0.2",
        "ib.commission_wait_seconds=0.3", 'schedule.gate_entries="off"',
    ], state_dir=str(tmp_path))


@pytest.fixture
async def tws() -> AsyncIterator[FakeTWS]:
    fake = await FakeTWS(auto_fill=False).start()
    yield fake
    await fake.stop()


async def start(tmp_path: Path, tws: FakeTWS, *more: str) -> tuple[Assembly, Reconciler]:
    cfg = config(tmp_path, tws.port, *more)
    store = StoreWriter(tmp_path / "algobot.duckdb")
    a = assemble(cfg, store)
    assert isinstance(a.broker, IBBroker) and isinstance(a.feed, IBFeed)
    for sym in SYMBOLS:
        a.engine.portfolio.mark_symbol(sym, 100.0)  # pre-trade checks want a last price
    await a.broker.connect()
    rec = await start_reconciliation(a.engine, a.broker, cfg)  # what the daemon does at start
    assert rec is not None
    # no store.start(): tests flush explicitly (and StoreWriter.close() can trip over a ticker
    # cancelled mid-flush, a race outside this adapter)
    return a, rec


async def stop(a: Assembly, rec: Reconciler) -> None:
    # let reconcile passes finish: cancelling one mid-flush cancels the store's in-flight write
    # (StoreWriter.flush awaits the executor future unshielded), which close() then re-raises
    await wait_for(lambda: not rec._tasks)
    await rec.close()
    await a.feed.close()
    await a.broker.close()
    await a.store.close()


def order(seq: int, symbol: str = "AAPL", qty: int = 10, limit: float | None = None) -> OrderRequest:
    typ = OrderType.LIMIT if limit is not None else OrderType.MARKET
    return OrderRequest(f"ab-{seq:08d}-{symbol}", symbol, Side.BUY, qty, typ, limit, created_ts=time.time_ns())


_last_t0 = [0]


def next_interval(step: int = 10) -> int:
    """Start (epoch s) of a fresh interval safely in the future, so the wall-clock flusher leaves it alone."""
    _last_t0[0] = max((int(time.time()) // step + 3) * step, _last_t0[0] + step)
    return _last_t0[0]


async def pump(a: Assembly, n: int, out: list[BarBatch]) -> None:
    async for batch in a.feed.batches(None):
        await a.engine.process(batch)
        out.append(batch)
        if len(out) >= n:
            return


async def prime(a: Assembly, tws: FakeTWS) -> BarBatch:
    """Stream one full interval through feed and engine (pre-trade checks want fresh prices)."""
    got: list[BarBatch] = []
    task = asyncio.create_task(pump(a, 1, got))
    await wait_for(lambda: tws.subscribed() == set(SYMBOLS))
    t0 = next_interval()
    for dt in (0, 5):
        for sym in SYMBOLS:
            tws.push_bar(sym, t0 + dt, 100, 100, 100, 100, 1000)
    await asyncio.wait_for(task, 10)
    return got[0]


async def test_bars_stream_into_engine(tmp_path: Path, tws: FakeTWS) -> None:
    a, rec = await start(tmp_path, tws)
    try:
        got: list[BarBatch] = []
        task = asyncio.create_task(pump(a, 1, got))
        await wait_for(lambda: tws.subscribed() == set(SYMBOLS))
        t0 = next_interval()
        tws.push_quote("AAPL", 99.9, 100.1)
        await asyncio.sleep(0.05)
        tws.push_bar("AAPL", t0, 100, 101, 99, 100.5, 300)
        tws.push_bar("MSFT", t0, 200, 201, 199, 200.5, 100)
        tws.push_bar("AAPL", t0 + 5, 100.5, 102, 100, 101.5, 200)
        tws.push_bar("MSFT", t0 + 5, 200.5, 200.6, 198, 199, 50)
        await asyncio.wait_for(task, 10)
        b = got[0]
        assert b.ts == t0 * NS_PER_SECOND and b.symbols == tuple(SYMBOLS) and b.valid.all()
        assert list(b.open) == [100, 200] and list(b.high) == [102, 201] and list(b.low) == [99, 198]
        assert list(b.close) == [101.5, 199] and list(b.volume) == [500, 150]
        assert b.bid[0] == 99.9 and b.ask[0] == 100.1  # quotes come from tick-by-tick BidAsk
        await a.store.flush()
        assert a.store.con.execute("SELECT count(*) FROM bars").fetchone()[0] == 2
    finally:
        await stop(a, rec)


async def test_order_fill_reaches_portfolio_and_store(tmp_path: Path, tws: FakeTWS) -> None:
    a, rec = await start(tmp_path, tws)
    try:
        await prime(a, tws)
        await a.engine.send([order(1)])
        await wait_for(lambda: len(tws.placed) == 1)
        tws.fill(tws.placed[0], 10, 101.25)
        await wait_for(lambda: a.engine.fills == 1 and not a.engine.open_orders)
        pos = a.engine.portfolio.position("AAPL")
        assert pos is not None and (pos.qty, pos.avg_cost) == (10, 101.25)
        assert a.engine.portfolio.commissions == 1.0
        await a.store.flush()
        con = a.store.con
        assert con.execute("SELECT client_order_id, qty, price, commission FROM trades").fetchall() == [
            ("ab-00000001-AAPL", 10, 101.25, 1.0)]
        assert con.execute("SELECT status, filled_qty FROM orders").fetchall() == [("filled", 10)]
    finally:
        await stop(a, rec)


async def test_disconnect_reducing_reconnect_recovers_gap_fill_once(tmp_path: Path, tws: FakeTWS) -> None:
    a, rec = await start(tmp_path, tws)
    try:
        await prime(a, tws)
        await a.engine.send([order(1, limit=100.0)])
        await wait_for(lambda: "ab-00000001-AAPL" in a.engine.open_orders
                       and a.engine.open_orders["ab-00000001-AAPL"].status is OrderStatus.ACCEPTED)
        connects = tws.connects
        o = tws.placed[0]
        tws.drop_all()  # both connections (broker and feed) die; ib_async fires disconnectedEvent twice
        tws.fill(o, 10, 99.5)  # happens at IB while we are away: nobody hears it live
        await wait_for(lambda: a.engine.state.state is TradingState.REDUCING)
        assert a.broker.session.disconnects == 1  # the double event was handled once
        await wait_for(lambda: tws.connects >= connects + 2 and a.broker.connected and a.feed.connected)
        await wait_for(lambda: a.engine.fills == 1 and not a.engine.open_orders)
        assert (await prime(a, tws)).valid.all()  # resubscribed after the reconnect: bars flow again
        await asyncio.sleep(0.3)
        tws.drop_all()  # a second gap with no new fill: nothing booked twice
        await wait_for(lambda: tws.connects >= connects + 4 and a.broker.connected)
        await wait_for(lambda: rec.runs >= 3)
        await a.store.flush()
        assert a.engine.fills == 1
        assert a.store.con.execute("SELECT count(*) FROM trades").fetchone()[0] == 1
        assert a.engine.portfolio.position("AAPL").qty == 10  # type: ignore[union-attr]
        assert len(tws.placed) == 1
    finally:
        await stop(a, rec)


async def test_connectivity_codes_1100_1102(tmp_path: Path, tws: FakeTWS) -> None:
    a, rec = await start(tmp_path, tws)
    try:
        await prime(a, tws)
        tws.send_error(1100, "Connectivity between IB and Trader Workstation has been lost.")
        await wait_for(lambda: not a.broker.connected and a.engine.state.state is TradingState.REDUCING)
        a.engine.track_order(order(7), 0, OrderStatus.NEW)  # REDUCING denies entries; test the broker gate itself
        await a.broker.submit([order(7)])  # not sent while IB is unreachable: closed locally as rejected
        assert not a.engine.open_orders
        assert any("disconnected" in e["message"] for e in a.engine.events if e["kind"] == "reject")
        tws.send_error(1102, "Connectivity between IB and Trader Workstation has been restored - data maintained.")
        await wait_for(lambda: a.broker.connected and a.broker.accepting_orders)
        assert tws.placed == []
    finally:
        await stop(a, rec)


async def test_restart_with_open_order_is_reconciled_not_resubmitted(tmp_path: Path, tws: FakeTWS) -> None:
    a, rec = await start(tmp_path, tws)
    await prime(a, tws)
    await a.engine.send([order(1, limit=100.0)])
    await wait_for(lambda: len(tws.placed) == 1)
    await asyncio.sleep(0.2)
    await stop(a, rec)  # the daemon goes away; the order keeps working at IB
    a, rec = await start(tmp_path, tws)
    try:
        assert "ab-00000001-AAPL" in a.engine.open_orders
        assert a.engine.open_orders["ab-00000001-AAPL"].status is OrderStatus.ACCEPTED
        await a.engine.broker.submit([order(1, limit=100.0)])  # even an explicit resend is a no-op
        tws.fill(tws.placed[0], 10, 99.0)
        await wait_for(lambda: a.engine.fills == 1 and not a.engine.open_orders)
        assert len(tws.placed) == 1
        assert a.engine.order_seq == 1
    finally:
        await stop(a, rec)


async def test_position_changed_outside_is_detected(tmp_path: Path, tws: FakeTWS) -> None:
    a, rec = await start(tmp_path, tws)  # a first run: the store now has books (the account's opening)
    await stop(a, rec)
    tws.positions["MSFT"] = (25.0, 310.0)  # bought in TWS by hand while the daemon was down
    a, rec = await start(tmp_path, tws)
    try:
        assert rec.last is not None and rec.last.position_diffs == {"MSFT": (0, 25)}
        assert a.engine.state.state is TradingState.REDUCING
        await a.store.flush()
        rows = a.store.con.execute("SELECT name, message FROM risk_events WHERE kind = 'reconcile'").fetchall()
        assert rows and rows[0][0] == "MSFT" and "broker 25" in rows[0][1]
    finally:
        await stop(a, rec)


async def test_external_order_is_adopted(tmp_path: Path, tws: FakeTWS) -> None:
    ext = tws.external_order("MSFT", "SELL", 5, 250.0)
    a, rec = await start(tmp_path, tws)
    try:
        cid = f"ib-{ext.perm_id}"
        assert rec.last is not None and rec.last.adopted == [cid]
        o = a.engine.open_orders[cid]
        assert (o.request.symbol, o.request.side, o.request.qty, o.request.reason) == ("MSFT", Side.SELL, 5, "external")
        assert tws.placed == []  # adopted, never sent
    finally:
        await stop(a, rec)


async def test_fresh_store_adopts_account_cash_and_positions_once(tmp_path: Path, tws: FakeTWS) -> None:
    tws.cash = 50_000.0
    tws.positions["MSFT"] = (25.0, 102.0)  # held before the daemon ever ran
    tws.prices["MSFT"] = 99.0
    venue_equity = 50_000.0 + 25 * 99.0
    a, rec = await start(tmp_path, tws)
    try:
        pf = a.engine.portfolio
        assert_adopted(rec, a.engine, "MSFT", 25, 102.0, 50_000.0, venue_equity)
        await prime(a, tws)  # bars at 100: stops measure from the venue's average cost
        await a.engine.send([order(1)])  # trade on top of the adopted books: cash tracks the venue's
        await wait_for(lambda: len(tws.placed) == 1)
        tws.fill(tws.placed[0], 10, 101.25)
        await wait_for(lambda: a.engine.fills == 2 and not a.engine.open_orders)
        assert pf.cash == pytest.approx(tws.cash)
    finally:
        await stop(a, rec)
    a, rec = await start(tmp_path, tws)  # restart: replayed once, not adopted again
    try:
        pf = a.engine.portfolio
        assert rec.last is not None and not rec.last.adopted_positions and not rec.last.position_diffs
        assert pf.cash == pytest.approx(tws.cash)
        assert pf.position("MSFT").qty == 25 and pf.position("AAPL").qty == 10  # type: ignore[union-attr]
        pf.mark_symbol("MSFT", 99.0)
        assert pf.equity == pytest.approx(tws.cash + 25 * 99.0 + 10 * 100.0)
        assert a.engine.state.state is TradingState.ACTIVE
        con = a.store.con
        assert con.execute("SELECT client_order_id, qty, price FROM trades WHERE client_order_id LIKE 'adopted%'"
                           ).fetchall() == [("adopted-MSFT", 25, 102.0)]
        assert con.execute("SELECT kind, amount FROM cash_events").fetchall() == [
            ("opening", pytest.approx(50_000.0 + 25 * 102.0))]  # cash before the opening fill
    finally:
        await stop(a, rec)


async def test_deposit_is_booked_as_cash_event_once(tmp_path: Path, tws: FakeTWS) -> None:
    a, rec = await start(tmp_path, tws)
    try:
        rec.cash_watch.quiet_seconds = 0.0  # the daemon waits 5 minutes after a fill (IB reports cash late)
        hwm = a.engine.portfolio.high_water_mark
        tws.deposit(25_000.0)
        await wait_for(lambda: any(v.tag == "TotalCashValue" and float(v.value) == tws.cash
                                   for v in a.broker.ib.accountValues()))
        first = await rec.run_once()
        assert first.cash_booked is None  # seen once: not yet booked (a fill may be in flight)
        second = await rec.run_once()
        assert second.cash_booked == pytest.approx(25_000.0)
        assert (await rec.run_once()).cash_booked is None  # booked once
        pf = a.engine.portfolio
        assert pf.cash == pytest.approx(tws.cash) and pf.high_water_mark == pytest.approx(hwm + 25_000.0)
        assert pf.drawdown == 0.0
    finally:
        await stop(a, rec)
    a, rec = await start(tmp_path, tws)
    try:
        assert a.engine.portfolio.cash == pytest.approx(tws.cash)
        assert a.store.con.execute("SELECT kind, amount FROM cash_events ORDER BY ts").fetchall() == [
            ("opening", pytest.approx(1_000_000.0)), ("deposit", pytest.approx(25_000.0))]
    finally:
        await stop(a, rec)


async def test_execution_correction_replaces_the_fill_once(tmp_path: Path, tws: FakeTWS) -> None:
    a, rec = await start(tmp_path, tws)
    pf = a.engine.portfolio
    try:
        await prime(a, tws)
        await a.engine.send([order(1)])
        await wait_for(lambda: len(tws.placed) == 1)
        e1 = tws.fill(tws.placed[0], 10, 101.25)
        await wait_for(lambda: a.engine.fills == 1 and not a.engine.open_orders)
        e2 = tws.correct(e1, price=101.0)  # .01.01 -> .01.02: same execution, corrected price
        assert e2.exec_id == e1.exec_id[:-2] + "02"
        await wait_for(lambda: a.engine.fills == 3)  # reversal + corrected fill, not a second buy
        pos = pf.position("AAPL")
        assert pos is not None and (pos.qty, pos.avg_cost) == (10, 101.0)
        assert pf.cash == pytest.approx(tws.cash) and pf.commissions == pytest.approx(1.0)
        connects = tws.connects
        tws.drop_all()  # after the reconnect reqExecutions returns the original and the correction
        await wait_for(lambda: tws.connects >= connects + 2 and a.broker.connected and rec.runs >= 2)
        await asyncio.sleep(0.5)
        assert a.engine.fills == 3 and pf.position("AAPL").qty == 10  # type: ignore[union-attr]
    finally:
        await stop(a, rec)
    tws.correct(e2, qty=8)  # corrected again (.03) while the daemon is down
    a, rec = await start(tmp_path, tws)
    pf = a.engine.portfolio
    try:
        assert rec.last is not None and not rec.last.position_diffs
        pos = pf.position("AAPL")
        assert pos is not None and (pos.qty, pos.avg_cost) == (8, 101.0)
        assert pf.cash == pytest.approx(tws.cash)
        await a.store.flush()
        rows = a.store.con.execute("SELECT exec_id, side, qty, price FROM trades ORDER BY ts, exec_id").fetchall()
        base = e1.exec_id[:-3]
        assert [r[0] for r in rows] == [f"{base}.01", f"{base}.01:reversed", f"{base}.02", f"{base}.02:reversed",
                                        f"{base}.03"]
        assert sum((1 if side == "buy" else -1) * q for _, side, q, _ in rows) == 8
    finally:
        await stop(a, rec)


async def test_fill_seen_by_a_snapshot_before_its_commission_is_booked_with_it(tmp_path: Path, tws: FakeTWS) -> None:
    """A reconciliation pass that meets an execution whose commission report TWS has not sent yet
    must not book it without: the exec id is then known and the commission, arriving a moment
    later, would be dropped -- a missed commission that only the CashWatch would ever notice."""
    a, rec = await start(tmp_path, tws, "ib.commission_wait_seconds=5.0")
    pf = a.engine.portfolio
    try:
        await prime(a, tws)
        await a.engine.send([order(1)])
        await wait_for(lambda: len(tws.placed) == 1)
        tws.hold_commissions = True
        asked = tws.exec_requests
        tws.fill(tws.placed[0], 10, 101.25)
        passing = asyncio.create_task(rec.run_once())  # a periodic pass while the commission is pending
        await wait_for(lambda: tws.exec_requests > asked)  # the venue answered it without the commission
        await asyncio.sleep(0.05)
        tws.release_commissions()
        await passing
        await wait_for(lambda: a.engine.fills == 1 and not a.engine.open_orders)
        await asyncio.sleep(0.2)
        assert pf.commissions == pytest.approx(1.0) and pf.cash == pytest.approx(tws.cash)
        await a.store.flush()
        assert a.store.con.execute("SELECT commission FROM trades").fetchall() == [(1.0,)]
    finally:
        await stop(a, rec)
