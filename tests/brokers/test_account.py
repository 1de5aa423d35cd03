"""Books from the venue account (algobotd/brokers/account.py) and IB execution corrections
(algobotd/brokers/ib_execs.py) against the real engine and store, with the scripted venue of
test_reconcile (no network): the rules the Alpaca/IB end-to-end tests exercise only in part."""

from __future__ import annotations

from pathlib import Path

import pytest

from algobotd.brokers.account import CashWatch, apply_restored_cash
from algobotd.brokers.ib_execs import ExecutionBook, exec_version
from algobotd.brokers.reconcile import BrokerSnapshot, Reconciler, reconcile, start_reconciliation
from algobotd.clock import LiveClock
from algobotd.domain import Fill, Side, TradingState
from algobotd.engine import Engine
from algobotd.store.restore import has_books, restore
from algobotd.symbols import SymbolIndex
from tests.brokers.conftest import Venue

pytestmark = pytest.mark.timeout(30)
NS = 1_000_000_000
T0 = 1_790_000_000 * NS
INITIAL = 1_000_000.0  # broker.paper.initial_cash (config default)


def assert_adopted(rec: Reconciler, engine: Engine, symbol: str, qty: int, cost: float, cash: float,
                   venue_equity: float) -> None:
    """What a fresh store's start-up pass leaves (the Alpaca and IB end-to-end tests): the venue's
    position at its average cost, its cash and equity, nothing differing, no drawdown, ACTIVE."""
    pf = engine.portfolio
    assert rec.last is not None and rec.last.adopted_positions == {symbol: qty} and not rec.last.position_diffs
    assert rec.last.broker_equity == pytest.approx(venue_equity)
    assert pf.cash == pytest.approx(cash) and pf.equity == pytest.approx(venue_equity)
    pos = pf.position(symbol)
    assert pos is not None and (pos.qty, pos.avg_cost) == (qty, cost)
    assert pf.drawdown == 0.0 and engine.day_start_equity == pytest.approx(venue_equity)
    assert engine.state.state is TradingState.ACTIVE  # nothing differs: no REDUCING


def engine_from(tmp_path: Path, eng: Engine) -> Engine:
    """What a restart builds from the same store file (assembly: restore, Engine, cash events)."""
    st = restore(eng.store.con)
    again = Engine(eng.cfg, SymbolIndex(["AAPL", "MSFT"]), Venue(), eng.store, LiveClock(), st)  # type: ignore[arg-type]
    apply_restored_cash(again, st)
    return again


async def test_adoption_seeds_books_that_replay_exactly(tmp_path: Path, env: tuple[Engine, Venue]) -> None:
    eng, venue = env
    assert not has_books(eng.store.con)
    venue.snaps = [BrokerSnapshot(T0, [], [], {"AAPL": 30, "MSFT": -5}, cash=20_000.0, equity=20_000.0 + 30 * 51 - 5 * 300,
                                  account="ACC1", costs={"AAPL": 50.0, "MSFT": 310.0},
                                  prices={"AAPL": 51.0, "MSFT": 300.0})]
    r = await reconcile(eng, venue, adopt=True)  # type: ignore[arg-type]
    pf = eng.portfolio
    assert r.adopted_positions == {"AAPL": 30, "MSFT": -5} and r.position_diffs == {}
    assert pf.cash == pytest.approx(20_000.0) and pf.equity == pytest.approx(r.broker_equity)
    assert pf.position("MSFT").avg_cost == 310.0  # type: ignore[union-attr]  # a short adopted at its cost
    assert pf.drawdown == 0.0 and pf.high_water_mark == pytest.approx(pf.equity)
    # equity - initial_cash == realized + unrealized - commissions still holds
    assert pf.equity - pf.initial_cash == pytest.approx(pf.realized_pnl + pf.unrealized_pnl - pf.commissions)
    assert has_books(eng.store.con)
    again = engine_from(tmp_path, eng)
    again.portfolio.mark_symbol("AAPL", 51.0)
    again.portfolio.mark_symbol("MSFT", 300.0)
    assert again.portfolio.cash == pytest.approx(20_000.0)
    assert again.portfolio.equity == pytest.approx(pf.equity)
    assert again.portfolio.high_water_mark == pytest.approx(pf.equity)
    assert again.day_start_equity == pytest.approx(pf.equity)


async def test_store_with_history_but_no_cash_events_takes_the_venue_cash_at_start(
        tmp_path: Path, env: tuple[Engine, Venue]) -> None:
    """A store written before cash events existed (or whose adoption saw no cash) holds books
    built on broker.paper.initial_cash: start-up must not size 1M against a 20k account until a
    quiet period that active trading never gives -- once positions agree, the venue's cash is
    the opening balance (recorded once, alerted, replayed after a restart)."""
    eng, venue = env
    eng.on_broker_event(Fill("X1", "ab-00000001-AAPL", "AAPL", Side.BUY, 10, 50.0, 1.0, T0 - NS))
    await eng.store.flush()
    venue.snaps = [BrokerSnapshot(T0, [], [], {"AAPL": 10}, cash=20_000.0, equity=20_510.0, account="ACC1",
                                  prices={"AAPL": 51.0})]
    rec = await start_reconciliation(eng, venue, eng.cfg)  # type: ignore[arg-type]
    assert rec is not None and rec.last is not None and not rec.last.position_diffs
    pf = eng.portfolio
    assert pf.cash == pytest.approx(20_000.0) and pf.equity == pytest.approx(20_510.0)
    assert pf.drawdown == 0.0 and eng.day_start_equity == pytest.approx(20_510.0)
    await rec.run_once()
    await rec.close()
    await eng.store.flush()
    con = eng.store.con
    assert con.execute("SELECT kind, amount, venue_cash FROM cash_events").fetchall() == [
        ("opening", pytest.approx(20_501.0), 20_000.0)]  # the cash before our fill (500 + 1 commission)
    assert con.execute("SELECT count(*) FROM alerts").fetchone()[0] == 1
    again = engine_from(tmp_path, eng)
    assert again.portfolio.cash == pytest.approx(20_000.0)
    again_rec = await start_reconciliation(again, venue, eng.cfg)  # type: ignore[arg-type]
    assert again_rec is not None
    await again_rec.close()
    await eng.store.flush()
    assert con.execute("SELECT count(*) FROM cash_events").fetchone()[0] == 1  # opened once


async def test_cash_watch_books_a_confirmed_quiet_difference_once(env: tuple[Engine, Venue]) -> None:
    eng, venue = env
    now = [0.0]
    rec = Reconciler(eng, venue)  # type: ignore[arg-type]
    rec.cash_watch = CashWatch(quiet_seconds=60.0, clock=lambda: now[0])
    venue.snaps = [BrokerSnapshot(T0, [], [], {}, cash=INITIAL + 1_000.0)]
    assert (await rec.run_once()).cash_booked is None  # first sight
    now[0] = 30.0
    assert (await rec.run_once()).cash_booked is None  # confirmed, but too soon after start (a fill may lag)
    eng.on_broker_event(Fill("X1", "ab-00000001-AAPL", "AAPL", Side.BUY, 1, 10.0, 0.0, T0))
    venue.snaps = [BrokerSnapshot(T0, [], [], {"AAPL": 1}, cash=INITIAL + 1_000.0 - 10.0)]
    now[0] = 70.0
    assert (await rec.run_once()).cash_booked is None  # a fill was booked: the quiet period starts over
    now[0] = 140.0
    venue.snaps = [BrokerSnapshot(T0, [], [], {"AAPL": 2}, cash=INITIAL + 1_000.0 - 10.0)]
    assert (await rec.run_once()).cash_booked is None  # positions differ: the cash says nothing
    venue.snaps = [BrokerSnapshot(T0, [], [], {"AAPL": 1}, cash=INITIAL + 1_000.0 - 10.0)]
    now[0] = 150.0
    assert (await rec.run_once()).cash_booked is None
    now[0] = 160.0
    day_start = eng.day_start_equity
    assert (await rec.run_once()).cash_booked == pytest.approx(1_000.0)
    assert eng.portfolio.cash == pytest.approx(INITIAL + 1_000.0 - 10.0)
    assert eng.day_start_equity == pytest.approx(day_start + 1_000.0)  # a deposit is no day's gain
    now[0] = 400.0
    assert (await rec.run_once()).cash_booked is None  # booked once
    await rec.close()
    await eng.store.flush()
    assert eng.store.con.execute("SELECT kind, amount FROM cash_events").fetchall() == [("deposit", 1_000.0)]


async def test_booked_cash_flow_raises_an_operator_alert_and_a_risk_event(env: tuple[Engine, Venue]) -> None:
    """Cash booked without a fill may be a deposit -- or a commission or a round trip our books
    missed: it must reach the operator through the alerts outbox, not only a log line."""
    eng, venue = env
    now = [0.0]
    rec = Reconciler(eng, venue)  # type: ignore[arg-type]
    rec.cash_watch = CashWatch(quiet_seconds=60.0, clock=lambda: now[0])
    venue.snaps = [BrokerSnapshot(T0, [], [], {}, cash=INITIAL - 12.5, account="ACC1")]
    await rec.run_once()
    now[0] = 90.0
    assert (await rec.run_once()).cash_booked == pytest.approx(-12.5)
    await rec.close()
    await eng.store.flush()
    con = eng.store.con
    assert con.execute("SELECT kind, name, value FROM risk_events WHERE kind = 'cash'").fetchall() == [
        ("cash", "withdrawal", -12.5)]
    alerts = con.execute("SELECT kind, level, payload FROM alerts").fetchall()
    assert len(alerts) == 1 and alerts[0][:2] == ("reconcile", "warning")
    assert '"amount": -12.5' in alerts[0][2] and "ACC1" in alerts[0][2]


async def test_restore_shifts_high_water_mark_and_day_start_by_later_flows(tmp_path: Path,
                                                                           env: tuple[Engine, Venue]) -> None:
    eng, _ = env
    w = eng.store
    w.add("cash_events", (T0, "A", "opening", 50_000.0, 50_000.0, "opening"))
    for i, eq in enumerate([60_000.0, 55_000.0]):
        w.add("equity", (T0 + (i + 1) * NS, eq, eq, 0, 0, 0, 0, 0, eq, 0))
    w.add("cash_events", (T0 + 3 * NS, "A", "withdrawal", -10_000.0, 40_000.0, "withdrawal"))
    w.add("equity", (T0 + 4 * NS, 45_000.0, 45_000.0, 0, 0, 0, 0, 0, 50_000.0, 0))
    await w.flush()
    st = restore(w.con)
    assert st.cash_base(INITIAL) == pytest.approx(40_000.0)
    assert st.high_water_mark == pytest.approx(50_000.0)  # 60k before a 10k withdrawal is 50k now
    again = engine_from(tmp_path, eng)
    assert again.portfolio.cash == pytest.approx(40_000.0)
    assert again.portfolio.high_water_mark == pytest.approx(50_000.0)
    assert again.portfolio.drawdown == pytest.approx(0.2)  # 40k against 50k, not against 60k


def test_execution_book_replaces_corrections_once() -> None:
    assert exec_version("0000e0d5.6542f7c1.01.02") == ("0000e0d5.6542f7c1.01", 2)
    assert exec_version("Xab:10") == ("Xab:10", 0)
    book = ExecutionBook()
    first = Fill("0000e0d5.6542f7c1.01.01", "ab-00000001-AAPL", "AAPL", Side.BUY, 10, 101.25, 1.0, T0)
    assert book.book(first) == ([first], 10)
    assert book.book(first) == ([first], 0)  # a replay: the portfolio drops the known id
    fixed = Fill("0000e0d5.6542f7c1.01.02", "ab-00000001-AAPL", "AAPL", Side.BUY, 8, 101.0, 0.8, T0 + NS)
    fills, shares = book.book(fixed)
    assert shares == -2 and [f.exec_id for f in fills] == ["0000e0d5.6542f7c1.01.01:reversed", fixed.exec_id]
    reversal, corrected = fills
    assert (reversal.side, reversal.qty, reversal.price, reversal.commission) == (Side.SELL, 10, 101.25, 0.0)
    assert corrected.commission == 0.0  # a lower commission is not refunded by a fill (the CashWatch sees it)
    assert {f.client_order_id for f in fills} == {"ab-00000001-AAPL:correction"}
    assert book.book(first) == ([], 0)  # the original again (reqExecutions returns both): nothing
    # after a restart the stored trades say what was booked: a further correction reverses the latest
    again = ExecutionBook()
    again.restore([first, reversal, corrected])
    third = Fill("0000e0d5.6542f7c1.01.03", "ab-00000001-AAPL", "AAPL", Side.BUY, 8, 100.5, 1.5, T0 + 2 * NS)
    fills, shares = again.book(third)
    assert [f.exec_id for f in fills] == ["0000e0d5.6542f7c1.01.02:reversed", third.exec_id] and shares == 0
    assert fills[1].commission == pytest.approx(0.5)  # 1.5 in all, 1.0 booked already


def test_execution_book_knows_what_it_booked() -> None:
    book = ExecutionBook()
    assert not book.booked("0000e0d5.6542f7c1.01.01")
    book.book(Fill("0000e0d5.6542f7c1.01.02", "ab-00000001-AAPL", "AAPL", Side.BUY, 8, 101.0, 0.8, T0))
    assert book.booked("0000e0d5.6542f7c1.01.01") and book.booked("0000e0d5.6542f7c1.01.02")  # .01: superseded
    assert not book.booked("0000e0d5.6542f7c1.01.03") and not book.booked("0000e0d5.6542f7c2.01.01")
