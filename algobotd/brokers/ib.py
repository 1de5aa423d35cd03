"""Interactive Brokers (TWS / IB Gateway) through ib_async, async calls only.

The connection and its reconnects live in :mod:`algobotd.brokers.ib_session`.
:class:`IBBroker` sends orders with our client order id in ``orderRef`` and turns
``orderStatusEvent`` / ``execDetailsEvent`` / ``commissionReportEvent`` into OrderUpdate and
Fill, each execution exactly once (keyed by IB's exec id, which is also the ``Fill.exec_id``
reconciliation sees in :meth:`IBBroker.snapshot`). After every reconnect it re-requests the
day's executions (``reqExecutionsAsync``) and books those it missed, before telling the
reconciler the connection is back.

Fills wait for their commission report (IB sends it right after the execution) for at most
``ib.commission_wait_seconds``, because ``Fill`` is immutable and carries the commission.
A terminal order status that arrives before its fills is held back until they are out, so the
engine always sees fills before FILLED.

IB order ids are never reused, even after a gateway restart resets ``nextValidId``: the
adapter keeps a persisted floor (``<state.dir>/ib_order_ids.json``, reserved in blocks) and
moves ib_async's id sequence past it before every order.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import structlog
from ib_async import IB, ExecutionFilter, LimitOrder, MarketOrder, Stock
from ib_async import Fill as IBFill
from ib_async import Trade as IBTrade

from algobotd.brokers.base import BrokerError, BrokerEvent, EventSink
from algobotd.brokers.ib_execs import ExecutionBook, exec_version
from algobotd.brokers.ib_session import IBSession, ns
from algobotd.brokers.reconcile import BrokerOrder, BrokerSnapshot, is_our_id
from algobotd.config import IBConfig
from algobotd.domain import (
    BarBatch, Fill, OrderRequest, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce,
)

log = structlog.get_logger(__name__)

ORDER_ID_BLOCK = 100  # ids reserved per write of the persisted floor


def _map_status(st: str, filled: int, qty: int) -> OrderStatus | None:
    if st == "Filled" or (qty > 0 and filled >= qty):
        return OrderStatus.FILLED
    if st in ("Cancelled", "ApiCancelled"):
        return OrderStatus.CANCELED
    if st == "Inactive":
        return OrderStatus.REJECTED
    if st in ("PreSubmitted", "Submitted"):
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.ACCEPTED
    return None  # PendingSubmit, PendingCancel, ApiPending, ValidationError: nothing final to say


class _OrderIds:
    """Never-reused IB order ids: a persisted floor, reserved ``ORDER_ID_BLOCK`` at a time."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.next = 1
        self.reserved = 0
        if path is not None and path.exists():
            self.next = self.reserved = int(json.loads(path.read_text())["next_order_id"])

    def take(self, ib: IB) -> int:
        ib.client.updateReqId(self.next)
        oid = ib.client.getReqId()
        self.next = oid + 1
        if self.path is not None and self.next > self.reserved:
            self.reserved = self.next + ORDER_ID_BLOCK
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"next_order_id": self.reserved}))
            os.replace(tmp, self.path)  # written before the id is used: a crash can only skip ids
        return oid


class IBBroker:
    name = "ib"

    def __init__(self, cfg: IBConfig, clock: Callable[[], int], state_dir: Path | None = None) -> None:
        self.cfg = cfg
        self._clock = clock
        self.session = IBSession(cfg, cfg.client_id, readonly=False, name="broker")
        self.ib = self.session.ib
        self.accepting_orders = True  # the Reconciler closes this gate until the books agree
        self._sink: EventSink | None = None
        self._undelivered: list[BrokerEvent] = []
        self._listener: Callable[[bool], None] | None = None
        self._ids = _OrderIds(state_dir / "ib_order_ids.json" if state_dir is not None else None)
        self._known: set[str] = set()  # client order ids seen (ours or at the venue): never sent twice
        self._last: dict[str, tuple[OrderStatus, int]] = {}  # last update emitted per order
        self._fill_qty: dict[str, int] = {}  # shares emitted as fills per order
        self._held: dict[str, OrderUpdate] = {}  # terminal updates waiting for their fills
        self._emitted: set[str] = set()  # exec ids already sent to the sink
        self._execs = ExecutionBook()  # corrections (.01 -> .02) replace the fill they correct
        self._waiting: dict[str, tuple[IBFill, asyncio.TimerHandle]] = {}  # exec id -> fill awaiting commission
        self.ib.orderStatusEvent += self._on_status
        self.ib.execDetailsEvent += self._on_exec
        self.ib.commissionReportEvent += self._on_commission
        self.session.on_lost.append(lambda why: self._notify(False))
        self.session.on_restored.append(self._after_restore)

    # --- Broker protocol ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.session.up

    def set_sink(self, sink: EventSink) -> None:
        self._sink = sink
        pending, self._undelivered = self._undelivered, []
        for ev in pending:
            sink(ev)

    @property
    def account_number(self) -> str:
        accounts = self.ib.managedAccounts() if self.session.up else []
        return self.cfg.account or (accounts[0] if len(accounts) == 1 else "")

    def set_connection_listener(self, listener: Callable[[bool], None]) -> None:
        self._listener = listener

    def restore(self, open_orders: list[tuple[OrderRequest, int, OrderStatus]]) -> None:
        """A restarted daemon's open orders: known ids, so a resubmission is a no-op."""
        for req, filled, status in open_orders:
            self._known.add(req.client_order_id)
            self._last[req.client_order_id] = (status, filled)
            self._fill_qty[req.client_order_id] = filled

    def restore_fills(self, fills: list[Fill]) -> None:
        """The stored trades: a correction of an execution booked before a restart is still a replacement."""
        self._execs.restore(fills)

    async def connect(self) -> None:
        await self.session.connect()
        await self._recover()
        self._notify(True)

    async def close(self) -> None:
        for _, timer in self._waiting.values():
            timer.cancel()
        await self.session.close()

    def on_batch(self, batch: BarBatch) -> None:
        pass  # the venue matches orders, not us

    async def submit(self, orders: list[OrderRequest]) -> None:
        for req in orders:
            if req.client_order_id in self._known:
                continue  # the venue already has it (or had it): never a second order
            if not (self.session.up and self.accepting_orders):
                why = "disconnected" if not self.session.up else "reconciling"
                self._emit(OrderUpdate(req.client_order_id, self._clock(), OrderStatus.REJECTED,
                                       reason=f"[{why}] not sent to IB"))
                continue
            self._known.add(req.client_order_id)
            self._place(req)

    def _place(self, req: OrderRequest) -> None:
        action = "BUY" if req.side is Side.BUY else "SELL"
        kw = {"orderRef": req.client_order_id, "tif": "GTC" if req.tif is TimeInForce.GTC else "DAY",
              "account": self.cfg.account}
        order = (LimitOrder(action, req.qty, float(req.limit_price or 0), **kw) if req.type is OrderType.LIMIT
                 else MarketOrder(action, req.qty, **kw))
        order.orderId = self._ids.take(self.ib)
        self._last[req.client_order_id] = (OrderStatus.NEW, 0)
        self.ib.placeOrder(Stock(req.symbol, "SMART", "USD"), order)

    async def cancel(self, client_order_id: str) -> None:
        for t in self.ib.openTrades():
            if t.order.orderRef == client_order_id:
                self.ib.cancelOrder(t.order)

    async def cancel_all(self) -> None:
        if not self.session.up:
            return
        for t in self.ib.openTrades():
            if t.order.orderRef in self._known:
                self.ib.cancelOrder(t.order)

    # --- events -----------------------------------------------------------------------------------

    def _emit(self, ev: BrokerEvent) -> None:
        if self._sink is None:
            self._undelivered.append(ev)
        else:
            self._sink(ev)

    def _notify(self, up: bool) -> None:
        if self._listener is not None:
            self._listener(up)

    def _on_status(self, trade: IBTrade) -> None:
        coid = trade.order.orderRef
        if not self._ours(coid):
            return  # not ours (another client, manual TWS order): reconciliation adopts it
        s = trade.orderStatus
        filled = int(s.filled)
        status = _map_status(s.status, filled, int(trade.order.totalQuantity))
        if status is None:
            return
        if status is OrderStatus.FILLED:
            filled = int(trade.order.totalQuantity)  # completed orders (after a restart) carry filled = 0
        reason = ""
        if status is OrderStatus.CANCELED and trade.log and trade.log[-1].errorCode:
            reason = trade.log[-1].message
            if self._last.get(coid, (OrderStatus.NEW, 0))[0] is OrderStatus.NEW:
                status = OrderStatus.REJECTED  # refused before it ever worked
        self._update(OrderUpdate(coid, self._clock(), status, filled, float(s.avgFillPrice),
                                 str(trade.order.permId or trade.order.orderId), reason))

    def _update(self, up: OrderUpdate) -> None:
        key = (up.status, up.filled_qty)
        if self._last.get(up.client_order_id) == key:
            return  # ib_async repeats statuses (e.g. after a reconnect): say each change once
        if up.status.is_terminal and up.filled_qty > self._fill_qty.get(up.client_order_id, 0):
            if up.client_order_id not in self._held:  # never wait forever for a fill IB does not send
                asyncio.get_running_loop().call_later(2 * self.cfg.commission_wait_seconds + 1, self._release,
                                                      up.client_order_id)
            self._held[up.client_order_id] = up  # fills first, then FILLED
            return
        self._last[up.client_order_id] = key
        self._emit(up)

    def _release(self, coid: str) -> None:
        held = self._held.pop(coid, None)
        if held is not None:
            log.warning("ib terminal status without all fills", order=coid, filled=held.filled_qty,
                        fills=self._fill_qty.get(coid, 0))
            self._last[coid] = (held.status, held.filled_qty)
            self._emit(held)

    def _ours(self, ref: str) -> bool:
        return ref in self._known or is_our_id(ref)

    def _on_exec(self, trade: IBTrade, fill: IBFill) -> None:
        ex = fill.execution
        if not self._ours(ex.orderRef) or ex.execId in self._emitted or ex.execId in self._waiting:
            return
        timer = asyncio.get_running_loop().call_later(self.cfg.commission_wait_seconds, self._flush_exec, ex.execId)
        self._waiting[ex.execId] = (fill, timer)

    def _on_commission(self, trade: IBTrade, fill: IBFill, report: object) -> None:
        self._flush_exec(fill.execution.execId)

    def _flush_exec(self, exec_id: str) -> None:
        entry = self._waiting.pop(exec_id, None)
        if entry is not None:
            entry[1].cancel()
            self._emit_fill(entry[0])

    def _emit_fill(self, f: IBFill) -> None:
        ex = f.execution
        if ex.execId in self._emitted:
            return
        self._emitted.add(ex.execId)
        fills, shares = self._execs.book(to_fill(f))
        for fill in fills:
            self._emit(fill)
        coid = ex.orderRef
        self._fill_qty[coid] = self._fill_qty.get(coid, 0) + shares
        held = self._held.get(coid)
        if held is not None and held.filled_qty <= self._fill_qty[coid]:
            del self._held[coid]
            self._update(held)

    # --- recovery and reconciliation ------------------------------------------------------------------

    async def _after_restore(self, resubscribe: bool) -> None:
        try:
            await self._recover()
        except Exception as e:  # the reconciler retries on its own; stay closed meanwhile
            log.warning("ib recovery after reconnect failed", error=repr(e))
        self._notify(True)

    async def _recover(self) -> None:
        """After any (re)connect: learn the venue's orders, then book fills we missed, once each."""
        for t in self.ib.trades():
            ref = t.order.orderRef
            if ref:
                self._known.add(ref)  # an order of ours the store may have lost: never resend
            if t.order.orderId > 0:
                self._ids.next = max(self._ids.next, t.order.orderId + 1)
        for f in await self._executions():
            self._ids.next = max(self._ids.next, f.execution.orderId + 1)
            if self._ours(f.execution.orderRef):
                self._flush_exec(f.execution.execId)
                self._emit_fill(f)
        for t in self.ib.trades():
            if t.order.orderRef in self._known:
                self._on_status(t)

    async def _executions(self) -> list[IBFill]:
        """The day's executions of this client, an original before its correction, each with its
        commission: TWS sends a commission report a moment after its execution, and a fill booked
        without it would never get it (its exec id is booked; the report is then dropped). Waits
        up to ``commission_wait_seconds`` for the reports of executions not booked yet, as the
        live path does (booked ones are past helping: no pass waits for them again)."""
        got = await self.ib.reqExecutionsAsync(ExecutionFilter(clientId=self.session.client_id))
        deadline = time.monotonic() + self.cfg.commission_wait_seconds
        while True:
            # the wrapper's copy is the one its commission report updates
            fills = [self.ib.wrapper.fills.get(f.execution.execId, f) for f in got]
            if time.monotonic() >= deadline or all(
                    f.commissionReport.execId or self._execs.booked(f.execution.execId) for f in fills):
                return sorted(fills, key=_exec_order)
            await asyncio.sleep(0.02)

    async def snapshot(self, since_ns: int) -> BrokerSnapshot:
        """What IB knows now: open orders, today's executions since ``since_ns``, positions, cash."""
        if not self.session.up:
            raise BrokerError("disconnected", "IB snapshot while disconnected")
        now = self._clock()
        open_trades = await self.ib.reqAllOpenOrdersAsync()  # other clients' and TWS's too: adopted as external
        fills = await self._executions()
        positions = await self.ib.reqPositionsAsync()
        done = [t for t in self.ib.trades() if t.isDone() and self._ours(t.order.orderRef)]
        orders = [to_broker_order(t) for t in (*open_trades, *done)]
        pos = {p.contract.symbol: int(p.position) for p in positions
               if int(p.position) and (not self.cfg.account or p.account == self.cfg.account)}
        values = {v.tag: v.value for v in self.ib.accountValues(self.cfg.account) if v.currency in ("USD", "BASE")}
        cash = float(values["TotalCashValue"]) if "TotalCashValue" in values else None
        equity = float(values["NetLiquidation"]) if "NetLiquidation" in values else None
        bp = float(values["BuyingPower"]) if "BuyingPower" in values else None
        # per share for stocks: the position's average cost, the portfolio's market price
        costs = {p.contract.symbol: float(p.avgCost) for p in positions if p.contract.symbol in pos}
        prices = {p.contract.symbol: float(p.marketPrice) for p in self.ib.portfolio(self.cfg.account)
                  if p.position and p.marketPrice > 0}
        our: list[Fill] = []
        for f in fills:
            booked, shares = self._execs.book(to_fill(f))
            our += booked
            coid = f.execution.orderRef
            if coid:  # counted once per execution, by whichever path books it first
                self._fill_qty[coid] = self._fill_qty.get(coid, 0) + shares
        return BrokerSnapshot(now, orders, [f for f in our if f.ts >= since_ns], pos, cash, equity, bp,
                              account=self.account_number, costs=costs, prices=prices)


def _exec_order(f: IBFill) -> tuple[object, int]:
    """Time, then correction number: a correction may carry its original's time."""
    return f.execution.time, exec_version(f.execution.execId)[1]


def to_fill(f: IBFill) -> Fill:
    ex = f.execution
    return Fill(exec_id=ex.execId, client_order_id=ex.orderRef or f"ib-{ex.permId}", symbol=f.contract.symbol,
                side=Side.BUY if ex.side == "BOT" else Side.SELL, qty=int(ex.shares), price=float(ex.price),
                commission=float(f.commissionReport.commission), ts=ns(ex.time))


def to_broker_order(t: IBTrade) -> BrokerOrder:
    o, s = t.order, t.orderStatus
    qty, filled = int(o.totalQuantity), int(s.filled)
    status = _map_status(s.status, filled, qty) or OrderStatus.ACCEPTED
    if status is OrderStatus.FILLED:
        filled = qty  # completed orders from reqCompletedOrders carry no filled quantity
    lmt = o.lmtPrice if o.orderType == "LMT" else None
    return BrokerOrder(o.orderRef or f"ib-{o.permId}", str(o.permId or o.orderId), t.contract.symbol,
                       Side.BUY if o.action == "BUY" else Side.SELL, qty, filled, status, float(s.avgFillPrice),
                       OrderType.LIMIT if lmt is not None else OrderType.MARKET, lmt,
                       TimeInForce.GTC if o.tif == "GTC" else TimeInForce.DAY)
