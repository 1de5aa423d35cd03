"""Alpaca broker adapter (alpaca-py 0.44): orders over REST, updates over the trading stream.

Why it looks the way it does:
- alpaca-py's REST clients are synchronous (``requests``): every call runs in
  ``asyncio.to_thread`` with a socket timeout, so the event loop never blocks or hangs.
- ``TradingStream.run()`` calls ``asyncio.run()``; we run its ``_run_forever()`` coroutine as a
  task on the daemon's loop instead. It reconnects by itself (exponential backoff with
  jitter); a small subclass reports every (dis)connection to the Reconciler, which closes
  the order gate, escalates to REDUCING while down, and reconciles before orders resume.
- Exactly once: an execution's id is ``<alpaca order id>:<cumulative filled qty>``, which the
  trade-update stream and the FILL account activities both give, so a fill seen live and
  the same fill found by a snapshot after a reconnect are one fill.
- Our client order id goes to Alpaca as ``client_order_id``; Alpaca refuses a second order
  with the same id, so a resubmission after a restart never doubles an order.
- Events for orders that are neither ours nor adopted are not booked; they go to the
  external listener (the Reconciler), which adopts the order or records the position change.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus
from alpaca.trading.enums import TimeInForce as ATimeInForce
from alpaca.trading.models import Order as AOrder
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import GetOrdersRequest, LimitOrderRequest, MarketOrderRequest
from alpaca.trading.stream import TradingStream

from algobotd.brokers.alpaca_common import (  # noqa: F401  (resolve_keys: re-exported for callers)
    StreamStateMixin,
    StreamSupervisor,
    api_failure,
    broker_order,
    ns_of,
    resolve_keys,
    utc_of,
    with_timeout,
    ws_params,
)
from algobotd.brokers.base import BrokerError, BrokerEvent, EventSink
from algobotd.brokers.reconcile import BrokerSnapshot, is_our_id
from algobotd.config import AlpacaConfig
from algobotd.domain import BarBatch, Fill, OrderRequest, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce

log = structlog.get_logger(__name__)
T = TypeVar("T")


class _Stream(StreamStateMixin, TradingStream):
    """TradingStream that tells us when it (re)connects and when it loses the connection."""


class AlpacaBroker:
    name = "alpaca"

    def __init__(self, cfg: AlpacaConfig, clock: Callable[[], int] | None = None, connect_timeout: float = 15.0) -> None:
        self.cfg = cfg
        self._clock = clock or time.time_ns
        self.reconnect = (cfg.reconnect_initial_seconds, cfg.reconnect_max_seconds)
        self.connect_timeout = connect_timeout
        self.accepting_orders = True  # the Reconciler closes this gate until the books agree
        self.rest: TradingClient | None = None
        self.account_number = ""
        self._sup: StreamSupervisor | None = None  # the trading stream, restarted when alpaca-py gives up
        self._up = asyncio.Event()
        self._closing = False
        self._sink: EventSink | None = None
        self._undelivered: list[BrokerEvent] = []
        self._conn_listener: Callable[[bool], None] | None = None
        self._external_listener: Callable[[str], None] | None = None
        self._followed: set[str] = set()
        self._oid: dict[str, str] = {}  # client order id -> alpaca order id
        self._status: dict[str, OrderStatus] = {}  # last status we reported per client id
        self._seen_exec: set[str] = set()
        self.in_flight: set[str] = set()  # submits not yet answered (reconciliation leaves them alone)
        self.reconnects = 0

    # --- Broker protocol ----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    @property
    def url(self) -> str:
        return self.cfg.rest_url or ("paper-api.alpaca.markets" if self.cfg.paper else "api.alpaca.markets")

    @property
    def _api(self) -> TradingClient:
        if self.rest is None:
            raise BrokerError("disconnected", "Alpaca broker used before connect()")
        return self.rest

    def set_sink(self, sink: EventSink) -> None:
        self._sink = sink
        pending, self._undelivered = self._undelivered, []
        for ev in pending:
            sink(ev)

    def set_connection_listener(self, listener: Callable[[bool], None]) -> None:
        self._conn_listener = listener

    def set_external_listener(self, listener: Callable[[str], None]) -> None:
        self._external_listener = listener

    def follow(self, client_order_id: str) -> None:
        self._followed.add(client_order_id)

    async def connect(self) -> None:
        if self._sup is not None and not self._closing:
            # already running (e.g. the pre-open job): the stream reconnects by itself; wait for it
            try:
                await asyncio.wait_for(self._up.wait(), self.connect_timeout)
            except TimeoutError:
                raise BrokerError("unreachable", "Alpaca trading stream is still reconnecting") from None
            return
        self._closing = False
        key, secret = resolve_keys(self.cfg)
        if not self.cfg.paper:
            log.warning("!!! LIVE TRADING: alpaca.paper = false, orders use REAL MONEY !!!", url=self.url)
        self.rest = with_timeout(TradingClient(key, secret, paper=self.cfg.paper, url_override=self.cfg.rest_url or None))
        acct = await self._call(self.rest.get_account, what="account")
        self.account_number = str(acct.account_number)
        if getattr(acct, "trading_blocked", False) or getattr(acct, "account_blocked", False):
            raise BrokerError("blocked", f"Alpaca account {self.account_number} is blocked for trading")
        self._sup = StreamSupervisor("alpaca-trading-stream", lambda: self._new_stream(key, secret),
                                     lambda: self._on_stream_state(False), self.reconnect)
        stream = self._sup.start()
        try:
            await asyncio.wait_for(self._up.wait(), self.connect_timeout)
        except TimeoutError:
            why = stream.auth_error or "no connection"
            await self.close()
            code = "auth" if stream.auth_error else "unreachable"
            raise BrokerError(code, f"Alpaca trading stream did not connect within {self.connect_timeout:g}s: {why}") from None
        self._sup.supervise()
        log.info("alpaca connected", account=self.account_number, paper=self.cfg.paper)

    def _new_stream(self, key: str, secret: str) -> _Stream:
        stream = _Stream(self._on_stream_state, key, secret, paper=self.cfg.paper,
                         url_override=self.cfg.trading_stream_url or None, websocket_params=ws_params(self.cfg))
        stream._reconnect_min_backoff, stream._reconnect_max_backoff = self.reconnect
        stream.subscribe_trade_updates(self._on_trade_update)  # before running: no cross-thread call
        return stream

    async def close(self) -> None:
        self._closing = True
        if self._sup is not None:
            await self._sup.close()
            self._sup = None
        self._up.clear()

    async def submit(self, orders: list[OrderRequest]) -> None:
        await asyncio.gather(*(self._submit_one(r) for r in orders))

    async def cancel(self, client_order_id: str) -> None:
        oid = self._oid.get(client_order_id)
        if oid is None:
            o = await self._lookup(client_order_id)
            if o is None:
                return
            oid = str(o.id)
        try:
            await self._call(self._api.cancel_order_by_id, oid, what="cancel")
        except BrokerError as exc:
            if exc.code != "rejected":  # 404/422: already closed, the stream says how
                raise

    async def cancel_all(self) -> None:
        """Cancel our (and adopted) working orders; other orders on the account are not ours to touch."""
        if not self.connected:
            log.warning("cancel_all while disconnected: reconciliation re-checks after reconnect")
            return
        snap_orders = await self._call(self._api.get_orders, GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500),
                                       what="open orders")
        mine = [o for o in snap_orders if self._is_ours(o.client_order_id)]
        await asyncio.gather(*(self.cancel(o.client_order_id) for o in mine), return_exceptions=True)

    def on_batch(self, batch: BarBatch) -> None:
        pass  # the venue matches orders, not us

    # --- orders -------------------------------------------------------------------------------

    def _is_ours(self, cid: str) -> bool:
        return is_our_id(cid) or cid in self._followed

    def _alpaca_request(self, req: OrderRequest) -> MarketOrderRequest | LimitOrderRequest:
        kw: dict[str, Any] = {"symbol": req.symbol, "qty": req.qty, "client_order_id": req.client_order_id,
                              "side": OrderSide.BUY if req.side is Side.BUY else OrderSide.SELL,
                              "time_in_force": ATimeInForce.GTC if req.tif is TimeInForce.GTC else ATimeInForce.DAY}
        if req.type is OrderType.LIMIT:
            return LimitOrderRequest(limit_price=req.limit_price, **kw)
        return MarketOrderRequest(**kw)

    async def _submit_one(self, req: OrderRequest) -> None:
        cid = req.client_order_id
        if not self.connected or not self.accepting_orders:
            why = "broker disconnected" if not self.connected else "broker not reconciled yet"
            self._update(OrderUpdate(cid, self._clock(), OrderStatus.REJECTED, reason=why))
            return
        self.in_flight.add(cid)
        try:
            o = await self._call(self._api.submit_order, self._alpaca_request(req), what="submit")
        except BrokerError as exc:
            self.in_flight.discard(cid)
            if exc.code == "rejected" and "unique" in exc.message:
                known = await self._lookup(cid)  # a resubmission: the venue already has it
                if known is not None:
                    self._order_event(known, self._clock())
                return
            if exc.code in ("unreachable", "venue"):
                # the venue may or may not have it: leave it open; reconciliation decides
                log.warning("submit outcome unknown", client_order_id=cid, error=exc.message)
                if self._external_listener is not None:  # ask for a reconciliation pass soon
                    self._external_listener(f"submit outcome unknown for {cid}")
                return
            self._update(OrderUpdate(cid, self._clock(), OrderStatus.REJECTED, reason=exc.message))
            return
        self.in_flight.discard(cid)
        self._order_event(o, self._clock())

    async def _lookup(self, cid: str) -> AOrder | None:
        try:
            return await self._call(self._api.get_order_by_client_id, cid, what="order lookup")
        except BrokerError as exc:
            if exc.code == "rejected":
                return None
            raise

    # --- stream -------------------------------------------------------------------------------

    def _on_stream_state(self, up: bool) -> None:
        if up == self._up.is_set() or (self._closing and not up):
            return
        if up:
            self._up.set()
            self.reconnects += 1
        else:
            self._up.clear()
            log.warning("alpaca trading stream lost")
        if self._conn_listener is not None and (self.reconnects > 1 or not up):
            self._conn_listener(up)  # the first connect is reconciled by start-up itself

    async def _on_trade_update(self, tu: TradeUpdate) -> None:
        o = tu.order
        cid = o.client_order_id
        if not self._is_ours(cid):
            if self._external_listener is not None:
                self._external_listener(f"{tu.event} on foreign order {cid} {o.side} {o.qty} {o.symbol}")
            return
        event = str(getattr(tu.event, "value", tu.event))
        ts = ns_of(tu.timestamp) or self._clock()
        if event in ("fill", "partial_fill") and tu.qty:
            cum = int(float(o.filled_qty or 0))
            exec_id = f"{o.id}:{cum}"
            if exec_id not in self._seen_exec:
                self._seen_exec.add(exec_id)
                self._emit(Fill(exec_id, cid, o.symbol or "", Side(str(getattr(o.side, "value", o.side))),
                                int(float(tu.qty)), float(tu.price or 0.0), 0.0, ts))
        self._order_event(o, ts)

    def _order_event(self, o: AOrder, ts: int) -> None:
        bo = broker_order(o)
        self._oid[bo.client_order_id] = bo.broker_order_id
        self._update(OrderUpdate(bo.client_order_id, ts, bo.status, bo.filled_qty, bo.avg_fill_price,
                                 bo.broker_order_id, ""))

    def _update(self, up: OrderUpdate) -> None:
        """Report a status once, and never a live status after a final one (REST and stream race)."""
        prev = self._status.get(up.client_order_id)
        if prev is not None and (prev.is_terminal or (prev == up.status and up.status is not OrderStatus.PARTIALLY_FILLED)):
            return
        self._status[up.client_order_id] = up.status
        self._emit(up)

    def _emit(self, ev: BrokerEvent) -> None:
        if self._sink is None:
            self._undelivered.append(ev)
        else:
            self._sink(ev)

    # --- reconciliation -----------------------------------------------------------------------

    async def snapshot(self, since_ns: int) -> BrokerSnapshot:
        rest = self.rest
        if rest is None:
            raise BrokerError("disconnected", "snapshot before connect()")
        after = utc_of(since_ns)
        open_orders = await self._call(rest.get_orders, GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500),
                                       what="open orders")
        recent = await self._call(rest.get_orders, GetOrdersRequest(status=QueryOrderStatus.ALL, after=after, limit=500),
                                  what="recent orders")
        acts: list[dict[str, Any]] = []
        params: dict[str, Any] = {"after": after.isoformat(), "direction": "asc", "page_size": 100}
        while True:  # activities are paged by the last id seen
            page = await self._call(rest.get, "/account/activities/FILL", dict(params), what="fill activities") or []
            acts.extend(page)
            if len(page) < params["page_size"]:
                break
            params["page_token"] = page[-1]["id"]
        positions = await self._call(rest.get_all_positions, what="positions")
        acct = await self._call(rest.get_account, what="account")
        orders = {str(o.id): broker_order(o) for o in [*recent, *open_orders]}
        fills = []
        for a in acts:
            bo = orders.get(a["order_id"])
            if bo is None:  # an older order filled recently: ask for it once
                try:
                    bo = broker_order(await self._call(rest.get_order_by_id, a["order_id"], what="order"))
                    orders[bo.broker_order_id] = bo
                except BrokerError:
                    continue
            fills.append(Fill(f"{a['order_id']}:{int(float(a['cum_qty']))}", bo.client_order_id, a["symbol"],
                              Side(a["side"] if a["side"] in ("buy", "sell") else ("sell" if "sell" in a["side"] else "buy")),
                              int(float(a["qty"])), float(a["price"]), 0.0,
                              ns_of(dt.datetime.fromisoformat(a["transaction_time"].replace("Z", "+00:00")))))
        pos, costs, prices = {}, {}, {}
        for p in positions:
            q = abs(int(float(p.qty)))
            if q:
                pos[p.symbol] = -q if str(getattr(p.side, "value", p.side)) == "short" else q
                costs[p.symbol] = float(p.avg_entry_price or 0.0)
                if p.current_price:
                    prices[p.symbol] = float(p.current_price)
        for bo in orders.values():
            self._oid.setdefault(bo.client_order_id, bo.broker_order_id)
        return BrokerSnapshot(ts=self._clock(), orders=list(orders.values()), fills=fills, positions=pos,
                              cash=float(acct.cash) if acct.cash is not None else None,
                              equity=float(acct.equity or 0.0), buying_power=float(acct.buying_power or 0.0),
                              account=str(acct.account_number or ""), costs=costs, prices=prices)

    async def _call(self, fn: Callable[..., T], *args: Any, what: str) -> T:
        try:
            return await asyncio.to_thread(fn, *args)
        except Exception as exc:
            raise api_failure(exc, what, self.url) from None

