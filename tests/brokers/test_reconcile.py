"""reconcile() against the real engine and store, with an in-memory venue (no network):
the rules that the Alpaca and IB end-to-end tests exercise only in part."""

from __future__ import annotations

import pytest

from algobotd.brokers.reconcile import BrokerOrder, BrokerSnapshot, Reconciler, is_our_id, reconcile
from algobotd.domain import Fill, OrderRequest, OrderStatus, OrderType, Side, TradingState
from algobotd.engine import Engine
from tests.brokers.conftest import Venue

pytestmark = pytest.mark.timeout(30)


def ours(seq: int, qty: int = 10) -> OrderRequest:
    return OrderRequest(f"ab-{seq:08d}-AAPL", "AAPL", Side.BUY, qty, OrderType.LIMIT, 99.0, created_ts=1)


def fill(cid: str, n: int, qty: int, price: float = 99.0) -> Fill:
    return Fill(f"X{cid}:{n}", cid, "AAPL", Side.BUY, qty, price, 0.0, 1000 + n)


def test_is_our_id() -> None:
    assert is_our_id("ab-00000012-AAPL") and is_our_id("ab-1-BRK.B")
    assert not is_our_id("web-12") and not is_our_id("ab-x-AAPL") and not is_our_id("9f1c-uuid")


async def test_fill_in_flight_is_not_a_difference(env: tuple[Engine, Venue]) -> None:
    eng, venue = env
    eng.track_order(ours(1), 0, OrderStatus.ACCEPTED)
    bo = BrokerOrder("ab-00000001-AAPL", "B1", "AAPL", Side.BUY, 10, 10, OrderStatus.FILLED, 99.0)
    # first look: the position already has the fill, the fill list does not yet
    venue.snaps = [BrokerSnapshot(1, [bo], [], {"AAPL": 10}),
                   BrokerSnapshot(2, [bo], [fill("ab-00000001-AAPL", 10, 10)], {"AAPL": 10})]
    r = await reconcile(eng, venue, settle_seconds=0.01)  # type: ignore[arg-type]
    assert r.position_diffs == {} and r.fills_inserted == ["Xab-00000001-AAPL:10"]
    assert r.resolved == {"ab-00000001-AAPL": OrderStatus.FILLED} and eng.state.state is TradingState.ACTIVE
    again = await reconcile(eng, venue)  # type: ignore[arg-type]
    assert again.fills_inserted == [] and eng.fills == 1  # exactly once


async def test_tolerance_records_without_escalating(env: tuple[Engine, Venue]) -> None:
    eng, venue = env
    venue.snaps = [BrokerSnapshot(1, [], [], {"MSFT": 2})]
    r = await reconcile(eng, venue, tolerance=5, settle_seconds=0.01)  # type: ignore[arg-type]
    assert r.position_diffs == {"MSFT": (0, 2)} and r.escalated_to is None
    assert eng.state.state is TradingState.ACTIVE
    await eng.store.flush()
    assert eng.store.con.execute("SELECT name, value, threshold FROM risk_events WHERE kind = 'reconcile'"
                                 ).fetchall() == [("MSFT", 2.0, 5.0)]
    r = await reconcile(eng, venue, tolerance=1, on_mismatch=TradingState.HALTED,  # type: ignore[arg-type]
                        settle_seconds=0.01)
    assert r.escalated_to is TradingState.HALTED and eng.state.current.actor == "breaker:reconcile"


async def test_store_orders_unknown_at_venue(env: tuple[Engine, Venue]) -> None:
    eng, venue = env
    eng.track_order(ours(1), 0, OrderStatus.NEW)  # its fills are found: FILLED
    eng.track_order(ours(2, qty=10), 0, OrderStatus.ACCEPTED)  # partly filled, then gone: CANCELED
    eng.track_order(ours(3), 0, OrderStatus.NEW)  # never reached the venue: CANCELED, not resubmitted
    f1 = fill("ab-00000001-AAPL", 10, 10)
    f2 = fill("ab-00000002-AAPL", 4, 4)
    venue.snaps = [BrokerSnapshot(1, [], [f1, f2], {"AAPL": 14})]
    r = await reconcile(eng, venue)  # type: ignore[arg-type]
    assert r.resolved == {"ab-00000001-AAPL": OrderStatus.FILLED, "ab-00000002-AAPL": OrderStatus.CANCELED,
                          "ab-00000003-AAPL": OrderStatus.CANCELED}
    assert not eng.open_orders and eng.portfolio.position("AAPL").qty == 14  # type: ignore[union-attr]
    assert eng.pending.tolist() == [0, 0]
    await eng.store.flush()
    assert eng.store.con.execute("SELECT count(*) FROM trades").fetchone()[0] == 2


async def test_adopt_external_with_prior_fills_and_halted_cancels(env: tuple[Engine, Venue]) -> None:
    eng, venue = env
    ext = BrokerOrder("web-1", "B9", "AAPL", Side.BUY, 10, 3, OrderStatus.PARTIALLY_FILLED, 99.0, ts=5)
    venue.snaps = [BrokerSnapshot(1, [ext], [fill("web-1", 3, 3)], {"AAPL": 3})]
    r = await reconcile(eng, venue)  # type: ignore[arg-type]
    assert r.adopted == ["web-1"] and venue.followed == ["web-1"] and r.position_diffs == {}
    o = eng.open_orders["web-1"]
    assert o.filled == 3 and o.request.reason == "external" and eng.pending.tolist() == [7, 0]
    await eng.set_state(eng.state.escalate(TradingState.HALTED, "test", "operator:test", 2))
    venue.canceled_all = 0
    await reconcile(eng, venue)  # type: ignore[arg-type]
    assert venue.canceled_all == 1  # HALTED: what still works at the venue is cancelled


async def test_reconciler_gate_and_disconnect(env: tuple[Engine, Venue]) -> None:
    eng, venue = env
    venue.snaps = [BrokerSnapshot(1, [], [], {})]
    rec = Reconciler(eng, venue)  # type: ignore[arg-type]
    assert venue.accepting_orders is False  # closed until the first pass
    await rec.run_once()
    assert venue.accepting_orders is True
    venue.connected = False
    assert venue.listener is not None
    venue.listener(False)
    venue.listener(False)  # a second event for the same outage changes nothing
    assert venue.accepting_orders is False
    await rec.close()
    assert eng.state.state is TradingState.REDUCING and eng.state.current.actor == "breaker:broker_disconnected"


async def test_orders_sent_during_a_pass_are_not_mistaken_for_lost(env: tuple[Engine, Venue]) -> None:
    eng, venue = env
    venue.snaps = [BrokerSnapshot(1, [], [], {})]
    late = OrderRequest("ab-00000007-AAPL", "AAPL", Side.BUY, 5, created_ts=eng.clock.now() + 10**12)
    eng.track_order(late, 0, OrderStatus.NEW)  # created after the venue was asked
    eng.track_order(ours(8), 0, OrderStatus.NEW)
    venue.in_flight = {"ab-00000008-AAPL"}  # type: ignore[attr-defined]  # its POST still under way
    eng.track_order(ours(9), 0, OrderStatus.NEW)  # neither: the venue never got it
    r = await reconcile(eng, venue)  # type: ignore[arg-type]
    assert r.resolved == {"ab-00000009-AAPL": OrderStatus.CANCELED}
    assert set(eng.open_orders) == {"ab-00000007-AAPL", "ab-00000008-AAPL"}


async def test_persisting_difference_is_recorded_once(env: tuple[Engine, Venue]) -> None:
    eng, venue = env
    venue.snaps = [BrokerSnapshot(1, [], [], {"MSFT": 2})]
    rec = Reconciler(eng, venue)  # type: ignore[arg-type]
    for _ in range(3):  # e.g. the periodic job
        await rec.run_once()
    venue.snaps = [BrokerSnapshot(2, [], [], {"MSFT": 3})]
    await rec.run_once()  # it changed: recorded again
    await rec.close()
    await eng.store.flush()
    assert eng.store.con.execute("SELECT value FROM risk_events WHERE kind = 'reconcile' ORDER BY ts").fetchall() == [
        (2.0,), (3.0,)]
    assert eng.store.con.execute("SELECT count(*) FROM alerts WHERE kind = 'reconcile'").fetchone()[0] == 2
