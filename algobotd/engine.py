"""The one trading loop: bars -> model -> sizing -> risk -> orders -> broker -> portfolio -> store.

Live runs, paper runs, backtests and Monte Carlo paths all drive this class; only the feed,
the broker, the clock and the store's durability policy differ. Per batch the work is numpy
over symbol-indexed arrays; Python loops only touch orders and fills, which are few.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog

from algobotd.book import BookState
from algobotd.brokers.base import Broker, BrokerEvent
from algobotd.clock import Clock, SimClock
from algobotd.config import Config
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
    TradingState,
    TradingStateChange,
)
from algobotd.models.base import Prediction
from algobotd.models.factory import build_model
from algobotd.portfolio import Portfolio
from algobotd.risk.hooks import RiskHooks
from algobotd.risk.layer import RiskLayer
from algobotd.risk.state import TradingStateMachine, is_reducing
from algobotd.store.restore import RestoredState
from algobotd.store.writer import StoreWriter
from algobotd.symbols import SymbolIndex

log = structlog.get_logger(__name__)
NS_PER_DAY = 86_400 * NS_PER_SECOND
_BAR_FIELDS = ("open", "high", "low", "close", "volume", "bid", "ask")
FLATTEN_CANCEL_WAIT_SECONDS = 5.0
PER_SYMBOL_MODELS = frozenset({"baseline", "sma_cross"})  # each symbol's score from its own bars only


def order_seq_of(client_order_id: str) -> int:
    """Our ids look like ``ab-<seq>-<symbol>``; the sequence survives restarts via the store."""
    return int(client_order_id.split("-")[1])


@dataclass(slots=True)
class OpenOrder:
    request: OrderRequest
    filled: int
    status: OrderStatus


class Engine(RiskHooks):  # RiskHooks: sizing, stops, breakers, pre-trade (algobotd/risk/hooks.py)
    def __init__(
        self,
        cfg: Config,
        symbols: SymbolIndex,
        broker: Broker,
        store: StoreWriter,
        clock: Clock,
        restored: RestoredState | None = None,
        books: int = 1,
    ) -> None:
        """``books`` > 1: Monte Carlo paths in lockstep (algobotd/book.py), one book per equal,
        contiguous block of ``symbols``; a fixed universe, nothing restored, nothing durable."""
        if books > 1 and (len(symbols) % books or restored is not None):
            raise ValueError(f"{books} books need a fixed universe split in equal blocks and no restored state "
                             f"({len(symbols)} symbols)")
        if books > 1 and cfg.model.kind not in PER_SYMBOL_MODELS:
            raise ValueError(f"model.kind {cfg.model.kind!r} looks across symbols: it cannot serve several books")
        self.cfg = cfg
        self.symbols = symbols
        self._codes = np.arange(len(symbols), dtype=np.int32)  # symbol codes for the store's market rows
        store.symbol_index = symbols
        self.broker = broker
        self.store = store
        self.clock = clock
        restored = restored or RestoredState()
        cash = cfg.broker.paper.initial_cash
        self.portfolio = Portfolio(cash, self.symbols)  # every symbol's arrays; with one book, the book's
        self.book_size = 0 if books == 1 else len(symbols) // books
        m = self.book_size
        book_symbols = None if books == 1 else [SymbolIndex(symbols.symbols[b * m : (b + 1) * m]) for b in range(books)]
        self.model = build_model(cfg, len(symbols), store)  # model.kind: baseline | sma_cross | ensemble
        self.model_id = self.model.model_id
        # the ensemble's challenger trainer, picked up by ops/runtime (monitor drift, `ctl retrain`)
        self.retrainer = getattr(self.model, "retrainer", None)
        self.risk = RiskLayer(cfg, symbols, store, book_symbols)
        if book_symbols is None:
            self.books = [BookState(0, 0, None, self.portfolio, TradingStateMachine(restored.trading_state),
                                    self.risk.breakers, self.risk.pretrade, day_start_equity=cash)]
        else:
            self.books = [BookState(b, b * m, (b + 1) * m, Portfolio(cash, idx, self.portfolio, b * m),
                                    TradingStateMachine(), self.risk.book_breakers[b], self.risk.book_pretrade[b],
                                    day_start_equity=cash) for b, idx in enumerate(book_symbols)]
        self.state = self.books[0].state  # the (first) book's latch: operator commands, status
        self.open_orders: dict[str, OpenOrder] = {}
        self.pending = np.zeros(len(symbols), dtype=np.int64)  # signed unfilled open quantity
        self.order_seq = restored.order_seq
        self.bar_ns = cfg.feed.bar_seconds * NS_PER_SECOND
        self.last_batch: BarBatch | None = None
        self.last_prediction: Prediction | None = None
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=500)
        self.equity_curve: collections.deque[tuple[int, float, float, float]] = collections.deque(
            restored.equity_curve, maxlen=5000
        )
        self.listeners: list[Callable[[str], None]] = []
        # "may new positions be opened at this time?" -- the ops scheduler installs the market
        # session here (algobotd/ops/scheduler.entry_gate); exits are never gated
        self.entry_gate: Callable[[int], bool] = lambda ts_ns: True
        # False for Monte Carlo paths (algobotd/validate/paths.py): nobody reads a path's bar and
        # prediction rows, and building them is ~10% of a path's time
        self.store_market_rows = True
        # alternative data (algobotd/altdata/hub.py): news / social / options events published
        # before a batch's end are attached to it before the model sees it; set by assembly
        self.alt_hub: Any = None
        self._last_weights: dict[str, float] | None = None
        self._last_weights_json = "{}"
        self.broker.set_sink(self.on_broker_event)
        self.universe = frozenset(symbols.symbols)  # what the feed delivers; the index may grow
        self.portfolio.restore(restored.fills)
        self.risk.restore(restored.fills)  # Kelly inputs from the trades history
        if restored.high_water_mark is not None:
            self.portfolio.raise_hwm(restored.high_water_mark)
        if restored.day_start is not None:
            self.day = restored.day_start[0] // NS_PER_DAY
            self.day_start_equity = restored.day_start[1]
        for req, filled, status in restored.open_orders:
            self._track(req, filled, status)
        if restored.resume is not None:
            closes = dict(zip(restored.resume.symbols, restored.resume.closes))
            for s in symbols.symbols:
                if s in closes and np.isfinite(closes[s]):
                    self.portfolio.mark_symbol(s, float(closes[s]))

    # --- the (first) book's numbers, as status, operators and the account code know them ------

    @property
    def day(self) -> int | None:
        return self.books[0].day

    @day.setter
    def day(self, value: int | None) -> None:
        self.books[0].day = value

    @property
    def day_start_equity(self) -> float:
        return self.books[0].day_start_equity

    @day_start_equity.setter
    def day_start_equity(self, value: float) -> None:
        self.books[0].day_start_equity = value

    @property
    def fills(self) -> int:
        return self.books[0].fills

    @property
    def traded_value(self) -> float:
        return self.books[0].traded_value

    def book_of(self, i: int) -> BookState:
        """The book of symbol ``i`` of the index."""
        return self.books[i // self.book_size] if self.book_size else self.books[0]

    def _book_of_symbol(self, symbol: str) -> BookState:
        return self.book_of(self.symbols[symbol]) if self.book_size else self.books[0]

    # --- per batch ---------------------------------------------------------------------------

    def _mark(self, batch: BarBatch) -> None:
        self.portfolio.mark(batch.close, batch.valid)  # every book's prices at once (their arrays are views)
        if self.book_size:
            for bk in self.books:
                bk.portfolio.prices_changed()

    def warm(self, batch: BarBatch, store_bars: bool) -> None:
        """Feed history to the model without trading (first start: also store it)."""
        if self.alt_hub is not None:
            self.alt_hub.attach(batch, self.bar_ns)
        self.last_prediction = self.model.update(batch)
        self._mark(batch)
        self.risk.observe(batch, batch.ts + self.bar_ns)  # volatility estimates warm up too
        if store_bars:
            self._store_bars(batch)
        self.last_batch = batch

    async def process(self, batch: BarBatch) -> None:
        if isinstance(self.clock, SimClock):
            self.clock.advance_to(batch.ts + self.bar_ns)
        # the day's loss is measured from the previous close: roll before this bar moves prices
        day = batch.ts // NS_PER_DAY
        for bk in self.books:
            if day != bk.day:
                bk.day, bk.day_start_equity = day, bk.portfolio.equity
        self.broker.on_batch(batch)  # resting orders fill against this bar (its open or later)
        self._mark(batch)
        now = self.clock.now()
        values = self._value_books(now)
        self._store_bars(batch)
        if self.alt_hub is not None:
            self.alt_hub.attach(batch, self.bar_ns)
        pred = self.model.update(batch)
        self.last_prediction = pred
        self.last_batch = batch
        self._store_predictions(batch, pred, now)
        await self._risk_after_mark(batch, now, values)  # stops + breakers on the new prices
        if any(bk.state.state is not TradingState.HALTED for bk in self.books):
            orders = self._orders_from(pred, batch, now)
            if orders:
                await self.send(orders)
        self.store.maybe_flush()
        self._notify("status", "equity", "positions", "predictions")

    def _value_books(self, now: int) -> list[tuple[float, float]]:
        """Every book's (equity, gross exposure) after marking, high-water marks raised.

        One book stores its ``equity`` row. Several books (Monte Carlo) store none: the table has
        no book column, and the path driver keeps each book's curve itself."""
        if not self.book_size:
            pf = self.portfolio
            equity, gross, net, unrealized = pf.valuation()
            drawdown = pf.update_hwm(equity)
            self.store.add("equity", (now, equity, pf.cash, gross, net, pf.realized_pnl, unrealized, pf.commissions,
                                      pf.high_water_mark, drawdown))
            self.equity_curve.append((now, equity, pf.cash, drawdown))
            return [(equity, gross)]
        books = [bk.portfolio for bk in self.books]
        self.portfolio.value_books(books, self.book_size)
        values = []
        for pf in books:
            equity, gross, _net, _unrealized = pf.valuation()
            pf.update_hwm(equity)
            values.append((equity, gross))
        return values

    def _orders_from(self, pred: Prediction, batch: BarBatch, now: int) -> list[OrderRequest]:
        pf = self.portfolio
        price = pf.last[: len(batch)]
        position = pf.qty[: len(batch)]
        held = position + self.pending
        target, equity = self._risk_targets(pred, batch, held, price)  # fractional Kelly, caps, budget
        delta = target - held
        idx = delta.nonzero()[0]  # (np.flatnonzero costs 5x more on a 1-D array)
        if idx.size == 0:
            return []
        idx = idx[np.abs(delta[idx]) * price[idx] >= self.cfg.risk.min_order_value]
        if idx.size and not self.entry_gate(now):  # outside the session: only orders that shrink a position
            idx = idx[np.array([is_reducing(int(held[i]), int(delta[i])) for i in idx.tolist()], dtype=bool)]
        # every order still goes through the pre-trade checks in send()
        orders = [self._new_order(self.symbols.symbols[i], int(delta[i]), "signal", now) for i in idx.tolist()]
        self.risk.record_sizing(orders, idx, self.risk.last_sizing, pred, held, price, equity, now)
        return orders

    # --- orders ------------------------------------------------------------------------------

    def _new_order(self, symbol: str, signed_qty: int, reason: str, now: int) -> OrderRequest:
        self.order_seq += 1
        # deterministic: the same decision after a restart gets the same id, and the broker
        # drops an id it already knows
        cid = f"ab-{self.order_seq:08d}-{symbol}"
        return OrderRequest(cid, symbol, Side.BUY if signed_qty > 0 else Side.SELL, abs(signed_qty),
                            OrderType.MARKET, None, TimeInForce.DAY, reason, now)

    async def send(self, orders: list[OrderRequest]) -> None:
        """Write-ahead: the order rows are durable before the broker sees the orders."""
        orders = self._pretrade(orders)  # denied orders are stored with their reason, never sent
        if not orders:
            return
        # enum ``_value_`` is the member attribute behind ``.value``, which costs a descriptor call
        # (~0.15 us): these rows are written for every order and fill
        new = OrderStatus.NEW
        add = self.store.add
        for req in orders:
            cid = req.client_order_id
            add("orders", (cid, order_seq_of(cid), req.created_ts, req.symbol, req.side._value_, req.qty,
                           req.type._value_, req.limit_price, req.tif._value_, req.reason, new._value_, 0, 0.0, "", "",
                           req.created_ts))
            self._track(req, 0, new)
        try:
            await self.store.barrier()
        except Exception:
            # not durable, so never sent: close them locally (pending is given back) and let
            # the caller fail; crash-only start-up sorts out the rest
            for req in orders:
                self._on_update(OrderUpdate(req.client_order_id, self.clock.now(), OrderStatus.REJECTED,
                                            reason="store unavailable: not sent"))
            raise
        orders = self._still_allowed(orders)  # a halt may have landed while the rows were flushed
        if orders:
            await self.broker.submit(orders)

    def outside_universe(self) -> list[str]:
        """Symbols with a position or open order that the feed does not deliver (no prices, no stops)."""
        held = {p.symbol for p in self.portfolio.positions()} | {o.request.symbol for o in self.open_orders.values()}
        return sorted(held - self.universe)

    def _grow_pending(self) -> None:
        # the shared SymbolIndex grows when restored fills name a symbol the feed no longer carries
        if len(self.symbols) > len(self.pending):
            self.pending = np.concatenate([self.pending, np.zeros(len(self.symbols) - len(self.pending), np.int64)])

    def _track(self, req: OrderRequest, filled: int, status: OrderStatus) -> None:
        self._grow_pending()
        self.open_orders[req.client_order_id] = OpenOrder(req, filled, status)
        i = self.symbols.get(req.symbol)
        if i is not None:
            self.pending[i] += req.side.sign * (req.qty - filled)

    def track_order(self, req: OrderRequest, filled: int, status: OrderStatus) -> None:
        """Follow an order this run did not send (reconciliation adopts venue orders)."""
        self._track(req, filled, status)

    def on_broker_event(self, ev: BrokerEvent) -> None:
        if isinstance(ev, Fill):
            self._on_fill(ev)
        else:
            self._on_update(ev)

    def _on_fill(self, fill: Fill) -> None:
        symbol, qty, price, ts = fill.symbol, fill.qty, fill.price, fill.ts
        bk = self._book_of_symbol(symbol)
        if not bk.portfolio.apply_fill(fill):
            return  # a fill we already booked (replayed by the venue)
        bk.fills += 1
        bk.traded_value += qty * price
        self._grow_pending()
        i = self.symbols[symbol]
        self.risk.on_fill(i, fill)  # round trips feed the Kelly inputs
        order = self.open_orders.get(fill.client_order_id)
        if order is not None:
            order.filled += qty
            self.pending[i] -= fill.signed_qty
        side = fill.side._value_  # (see send: ``.value`` is a descriptor call)
        add = self.store.add
        add("trades", (fill.exec_id, fill.client_order_id, symbol, side, qty, price, fill.commission, ts))
        pf = self.portfolio
        add("positions", (ts, symbol, int(pf.qty[i]), float(pf.avg_cost[i]), float(pf.last[i]), float(pf.realized[i])))
        self.record_event(ts, "fill", f"{side} {qty} {symbol} @ {price:.4f}")
        if self.listeners:
            self._notify("positions", "orders")

    def _on_update(self, up: OrderUpdate) -> None:
        cid, status = up.client_order_id, up.status
        value = status._value_  # (see send: ``.value`` is a descriptor call)
        self.store.add("order_events", (cid, up.ts, value, up.filled_qty, up.avg_fill_price, up.broker_order_id,
                                        up.reason))
        self.store.update_order((cid, value, up.filled_qty, up.avg_fill_price, up.broker_order_id, up.reason, up.ts))
        order = self.open_orders.get(cid)
        if order is None:
            return
        order.status = status
        if status.is_terminal:
            del self.open_orders[cid]
            i = self.symbols.get(order.request.symbol)
            if i is not None:
                self.pending[i] -= order.request.side.sign * (order.request.qty - order.filled)
            if up.status is OrderStatus.REJECTED:
                self._book_of_symbol(order.request.symbol).breakers.on_reject(up.ts)  # the reject-rate breaker
                self.record_event(up.ts, "reject", f"{up.client_order_id} rejected: {up.reason}")
        if self.listeners:
            self._notify("orders")

    # --- operator / breaker actions ----------------------------------------------------------

    async def set_state(self, change: TradingStateChange | None, book: BookState | None = None) -> bool:
        """Persist and act on a change of ``book``'s latch (default: the first book, operators')."""
        if change is None:
            return False
        bk = book or self.books[0]
        bk.count_change(change)
        self.store.add("trading_state", (change.ts, change.state.value, change.reason, change.actor))
        self.store.add("risk_events", (change.ts, "state", change.actor, None, None, change.state.value, change.reason))
        self.risk.record_state(change)  # pending alert in the outbox
        self.record_event(change.ts, "state", f"{change.state.value} by {change.actor}: {change.reason}")
        try:
            await self.store.flush()  # the latch must survive a crash right after this
        finally:
            # even when the store failed (its rows are retried), a halt still cancels at the venue
            if change.state is TradingState.HALTED:
                await self._cancel_book(bk)
            self._notify("status", "risk")
        return True

    async def _cancel_book(self, bk: BookState) -> None:
        if not self.book_size:
            await self.broker.cancel_all()
            return
        for cid, order in list(self.open_orders.items()):
            if self._book_of_symbol(order.request.symbol) is bk:
                await self.broker.cancel(cid)

    async def flatten(self, actor: str) -> list[OrderRequest]:
        """Close every position with market orders; allowed in any state, reduce-only verified."""
        await self.broker.cancel_all()
        # live venues acknowledge cancels asynchronously: size against booked positions only once
        # the working orders are gone, or a late cancel/fill leaves part of a position open
        deadline = time.monotonic() + FLATTEN_CANCEL_WAIT_SECONDS
        while self.open_orders and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.open_orders:
            self.record_event(self.clock.now(), "flatten", f"{len(self.open_orders)} orders still open after "
                              f"{FLATTEN_CANCEL_WAIT_SECONDS:.0f}s; flatten sized around them")
        now = self.clock.now()
        orders = self._flatten_orders(actor, now)  # reduce-only; pre-trade verifies it again in send()
        if orders:
            await self.send(orders)
            orders = [o for o in orders if o.client_order_id in self.risk.pretrade.seen_ids]  # drop denied ones
        self.record_event(now, "flatten", f"flatten by {actor}: {len(orders)} orders")
        return orders

    # --- bookkeeping -------------------------------------------------------------------------

    # Market rows are the bulk of a backtest's result file: symbols go as integer codes (the
    # store decodes them), per-batch values as block constants, the seven bar fields as rows of
    # one stacked array -- a handful of numpy calls per batch and no Python object per row.

    def _store_bars(self, batch: BarBatch) -> None:
        if not self.store_market_rows:
            return
        v = batch.valid
        fields = np.array((batch.open, batch.high, batch.low, batch.close, batch.volume, batch.bid, batch.ask))
        codes = self._symbol_codes(len(batch))
        if np.count_nonzero(v) != len(v):  # (count_nonzero: a fraction of .all()'s cost)
            fields, codes = fields[:, v], codes[v]
        self.store.add_columns("bars", dict(zip(_BAR_FIELDS, fields), symbol=codes), {"ts": batch.ts})

    def _store_predictions(self, batch: BarBatch, pred: Prediction, now: int) -> None:
        if not self.store_market_rows:
            return
        m = pred.ready & batch.valid
        k = np.count_nonzero(m)
        if k == 0:
            return
        if k == len(m):
            columns = {"symbol": self._symbol_codes(len(m)), "prediction": pred.score.copy(),
                       "confidence": pred.confidence.copy()}
        else:
            columns = {"symbol": self._symbol_codes(len(m))[m], "prediction": pred.score[m],
                       "confidence": pred.confidence[m]}
        self.store.add_columns("predictions", columns, {
            "ts": now, "model_id": self.model.model_id, "weights": self._weights_json(pred.weights),
            "actual_return": np.nan})

    def _symbol_codes(self, n: int) -> np.ndarray:
        if n > len(self._codes):
            self._codes = np.arange(n, dtype=np.int32)
        return self._codes[:n]

    def _weights_json(self, weights: dict[str, float]) -> str:
        if weights != self._last_weights:  # usually unchanged from bar to bar: encode once
            self._last_weights = dict(weights)
            self._last_weights_json = json.dumps(weights)
        return self._last_weights_json

    def record_event(self, ts: int, kind: str, message: str) -> None:
        self.events.append({"ts": ts, "kind": kind, "message": message})
        if self.listeners:  # (per fill in a backtest, where nobody listens)
            self._notify("events")

    def _notify(self, *topics: str) -> None:
        for listener in self.listeners:
            for t in topics:
                listener(t)

    async def run(self, batches: AsyncIterator[BarBatch], should_stop: Callable[[], bool]) -> int:
        n = 0
        async for batch in batches:
            await self.process(batch)
            n += 1
            if should_stop():
                break
        return n
