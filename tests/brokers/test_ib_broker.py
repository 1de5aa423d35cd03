"""IBBroker against the fake TWS, through the real ib_async client: orders, fills, ids, errors."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from algobotd.brokers.base import BrokerError, BrokerEvent
from algobotd.brokers.ib import IBBroker
from algobotd.config import IBConfig
from algobotd.domain import (
    Fill,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
)
from tests.brokers.ib_fake import FakeTWS
from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(60)


def ib_cfg(port: int, **kw: object) -> IBConfig:
    base: dict[str, object] = dict(host="127.0.0.1", port=port, client_id=17, account="DU1234567",
                                   timeout_seconds=2.0, reconnect_initial_seconds=0.05, reconnect_max_seconds=0.2,
                                   commission_wait_seconds=0.5)
    base.update(kw)
    return IBConfig(**base)  # type: ignore[arg-type]



@pytest.fixture
async def tws():
    fake = await FakeTWS().start()
    yield fake
    await fake.stop()


def req(seq: int, symbol: str = "AAPL", qty: int = 10, side: Side = Side.BUY, **kw: object) -> OrderRequest:
    return OrderRequest(f"ab-{seq:08d}-{symbol}", symbol, side, qty, **kw)  # type: ignore[arg-type]


async def connected(tws: FakeTWS, tmp_path: Path, **kw: object) -> tuple[IBBroker, list[BrokerEvent]]:
    b = IBBroker(ib_cfg(tws.port, **kw), time.time_ns, tmp_path)
    events: list[BrokerEvent] = []
    b.set_sink(events.append)
    await b.connect()
    return b, events


async def test_market_order_fills_once_with_commission(tws: FakeTWS, tmp_path: Path) -> None:
    b, events = await connected(tws, tmp_path)
    try:
        await b.submit([req(1)])
        await wait_for(lambda: any(isinstance(e, OrderUpdate) and e.status is OrderStatus.FILLED for e in events))
        fills = [e for e in events if isinstance(e, Fill)]
        assert len(fills) == 1
        f = fills[0]
        assert (f.client_order_id, f.symbol, f.side, f.qty, f.price, f.commission) == (
            "ab-00000001-AAPL", "AAPL", Side.BUY, 10, 100.0, 1.0)
        assert abs(f.ts - time.time_ns()) < 5e9  # UTC ns
        statuses = [e.status for e in events if isinstance(e, OrderUpdate)]
        assert statuses == [OrderStatus.ACCEPTED, OrderStatus.FILLED]
        assert events.index(f) < len(events) - 1  # the fill precedes FILLED
        assert tws.placed[0].order_ref == "ab-00000001-AAPL" and tws.placed[0].account == "DU1234567"
        await b.submit([req(1)])  # a resubmitted id is a no-op
        await asyncio.sleep(0.1)
        assert len(tws.placed) == 1
    finally:
        await b.close()


async def test_limit_order_partial_fills_and_cancel(tws: FakeTWS, tmp_path: Path) -> None:
    b, events = await connected(tws, tmp_path)
    try:
        await b.submit([req(2, "MSFT", 30, Side.SELL, type=OrderType.LIMIT, limit_price=99.5)])
        await wait_for(lambda: len(tws.placed) == 1)
        o = tws.placed[0]
        assert (o.action, o.order_type, float(o.lmt_price), o.qty) == ("SELL", "LMT", 99.5, 30)
        tws.fill(o, 10, 99.6)
        tws.fill(o, 5, 99.7)
        await wait_for(lambda: sum(isinstance(e, Fill) for e in events) == 2)
        await b.cancel("ab-00000002-MSFT")
        await wait_for(lambda: any(isinstance(e, OrderUpdate) and e.status is OrderStatus.CANCELED for e in events))
        ups = [(e.status, e.filled_qty) for e in events if isinstance(e, OrderUpdate)]
        assert ups == [(OrderStatus.ACCEPTED, 0), (OrderStatus.PARTIALLY_FILLED, 10),
                       (OrderStatus.PARTIALLY_FILLED, 15), (OrderStatus.CANCELED, 15)]
        assert [e.side for e in events if isinstance(e, Fill)] == [Side.SELL, Side.SELL]
    finally:
        await b.close()


async def test_order_ids_never_reused_after_gateway_restart(tws: FakeTWS, tmp_path: Path) -> None:
    b, events = await connected(tws, tmp_path)
    try:
        await b.submit([req(1), req(2)])
        await wait_for(lambda: len(tws.placed) == 2)
        first = {o.order_id for o in tws.placed}
        tws.restart(next_valid_id=1)  # the gateway forgets its id sequence
        await wait_for(lambda: b.connected and tws.connects == 2)
        await b.submit([req(3)])
        await wait_for(lambda: len(tws.placed) == 3)
        assert tws.placed[2].order_id > max(first)
    finally:
        await b.close()
    # a new daemon (new process) against a fresh gateway: the persisted floor still holds
    tws.restart(next_valid_id=1)
    b2, _ = await connected(tws, tmp_path)
    try:
        await b2.submit([req(4)])
        await wait_for(lambda: len(tws.placed) == 4)
        assert tws.placed[3].order_id > tws.placed[2].order_id
    finally:
        await b2.close()


async def test_client_id_in_use_is_a_clear_error(tws: FakeTWS, tmp_path: Path) -> None:
    b, _ = await connected(tws, tmp_path)
    try:
        other = IBBroker(ib_cfg(tws.port, timeout_seconds=0.5), time.time_ns, None)
        with pytest.raises(BrokerError) as err:
            await other.connect()
        assert err.value.code == "client_id_in_use"
        await other.close()
    finally:
        await b.close()


async def test_refused_and_unknown_account(tws: FakeTWS, tmp_path: Path) -> None:
    with pytest.raises(BrokerError) as err:
        await IBBroker(ib_cfg(1), time.time_ns, None).connect()
    assert err.value.code == "connect_refused" and "4002" in err.value.message
    b = IBBroker(ib_cfg(tws.port, account="U999"), time.time_ns, None)
    with pytest.raises(BrokerError) as err:
        await b.connect()
    assert err.value.code == "unknown_account"
    await b.close()


async def test_rejected_order_reports_the_reason(tws: FakeTWS, tmp_path: Path) -> None:
    b, events = await connected(tws, tmp_path)
    try:
        tws.reject_next = "insufficient margin"
        await b.submit([req(5)])
        await wait_for(lambda: any(isinstance(e, OrderUpdate) for e in events))
        [up] = [e for e in events if isinstance(e, OrderUpdate)]
        assert up.status is OrderStatus.REJECTED and "201" in up.reason and "margin" in up.reason
    finally:
        await b.close()


async def test_double_disconnect_event_is_handled_once(tws: FakeTWS, tmp_path: Path) -> None:
    b, _ = await connected(tws, tmp_path)
    seen: list[bool] = []
    b.set_connection_listener(seen.append)
    try:
        b.ib.disconnect()  # ib_async emits disconnectedEvent itself ...
        b.ib.disconnectedEvent.emit()  # ... and again (apiEnd) on some paths: simulate the second
        await wait_for(lambda: seen == [False, True] and b.connected)
        await asyncio.sleep(0.3)
        assert seen == [False, True] and b.session.disconnects == 1 and b.session.reconnects == 1
        assert tws.connects == 2
    finally:
        await b.close()


async def test_reconnect_retries_through_326(tws: FakeTWS, tmp_path: Path) -> None:
    b, _ = await connected(tws, tmp_path, timeout_seconds=0.3)
    try:
        tws.ghost_client_ids.add(17)  # the gateway has not noticed our old socket died yet
        tws.drop_all()
        await wait_for(lambda: b.session.disconnects == 1)
        await asyncio.sleep(1.0)
        assert not b.connected and 326 in b.session._errors
        tws.ghost_client_ids.clear()
        await wait_for(lambda: b.connected)
        assert b.session.reconnects == 1
    finally:
        await b.close()


def test_backoff_grows_and_is_jittered(tmp_path: Path) -> None:
    b = IBBroker(ib_cfg(1, reconnect_initial_seconds=1.0, reconnect_max_seconds=30.0), time.time_ns, None)
    draws = [[b.session.backoff(k) for _ in range(50)] for k in range(8)]
    assert all(0.5 <= d <= 1.0 for d in draws[0])
    assert all(15.0 <= d <= 30.0 for d in draws[7])  # capped
    assert len(set(draws[3])) > 10  # jittered


async def test_fill_without_commission_report_is_released_once(tws: FakeTWS, tmp_path: Path) -> None:
    b, events = await connected(tws, tmp_path, commission_wait_seconds=0.2)
    try:
        tws.send_commissions = False
        await b.submit([req(6)])
        await wait_for(lambda: any(isinstance(e, OrderUpdate) and e.status is OrderStatus.FILLED for e in events))
        await asyncio.sleep(0.5)
        fills = [e for e in events if isinstance(e, Fill)]
        assert len(fills) == 1 and fills[0].commission == 0.0
        assert isinstance(events[-1], OrderUpdate) and events[-1].status is OrderStatus.FILLED
    finally:
        await b.close()
