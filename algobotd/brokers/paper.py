"""Paper broker: a deterministic fill model driven by the bar batches the engine sees.

Why it looks the way it does:
- No look-ahead: an order decided on bar t's close rests until the *next* ``on_batch`` and
  fills against that bar (market at its open, limits when its range touches the limit).
- Costs are explicit: market orders pay half the quoted spread (from the last quote known
  before the bar, i.e. the previous batch) plus ``slippage_bps``; limit orders never fill
  worse than their limit and pay no spread.
- Liquidity is finite: one order fills at most ``floor(participation × volume)`` shares per
  bar; the rest keeps resting.
- Same inputs, same events: exec ids and timestamps derive from the orders and the bars
  (plus the injected clock for acknowledgements), never from randomness.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from algobotd.brokers.base import BrokerError, BrokerEvent, EventSink
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
from algobotd.symbols import SymbolIndex

NS_PER_DAY = 86_400 * NS_PER_SECOND

IB_PER_SHARE = 0.005
IB_MIN_PER_FILL = 1.00
IB_MAX_FRACTION = 0.005  # of trade value

# enum members read through their class cost ~0.1 us each (EnumType attribute lookup); the
# per-order and per-fill paths below run tens of thousands of times in a backtest
_BUY = Side.BUY
_MARKET = OrderType.MARKET
_LIMIT = OrderType.LIMIT
_DAY = TimeInForce.DAY
_SIDES = tuple(Side)  # tuples: membership tests identity first, and bad input needs no hash
_TIFS = tuple(TimeInForce)
_ACCEPTED = OrderStatus.ACCEPTED
_REJECTED = OrderStatus.REJECTED
_FILLED = OrderStatus.FILLED
_PARTIALLY_FILLED = OrderStatus.PARTIALLY_FILLED


def commission(model: str, qty: int, price: float) -> float:
    """Commission in USD for one fill under ``model`` ("ib", "alpaca" or "none")."""
    if model != "ib":
        return 0.0
    fee = max(qty * IB_PER_SHARE, IB_MIN_PER_FILL)
    return min(fee, IB_MAX_FRACTION * qty * price)  # the percentage cap beats the minimum


@dataclass(slots=True)
class _Working:
    """A resting order and what has happened to it so far."""

    req: OrderRequest
    day: int  # UTC calendar day (days since epoch) it was submitted, for DAY expiry
    filled: int = 0
    status: OrderStatus = OrderStatus.ACCEPTED
    known_qty: int = 0  # shares filled by this broker instance (restored fills have no price)
    known_notional: float = 0.0

    @property
    def remaining(self) -> int:
        return self.req.qty - self.filled

    @property
    def avg_price(self) -> float:
        return self.known_notional / self.known_qty if self.known_qty else 0.0


class PaperBroker:
    name = "paper"

    def __init__(
        self,
        config: PaperConfig,
        symbols: SymbolIndex,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.config = config
        self.symbols = symbols
        self._clock = clock or time.time_ns
        self._connected = False
        self._sink: EventSink | None = None
        self._undelivered: list[BrokerEvent] = []
        self._seen: set[str] = set()
        self._resting: dict[str, _Working] = {}  # insertion order = time priority
        # latest valid quote per batch position, updated *after* matching each batch
        self._bid = np.full(0, np.nan)
        self._ask = np.full(0, np.nan)

    # --- Broker protocol ----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    def set_sink(self, sink: EventSink) -> None:
        """Install the engine's sink; events produced before that are delivered now, in order."""
        self._sink = sink
        pending, self._undelivered = self._undelivered, []
        for event in pending:
            sink(event)

    async def connect(self) -> None:
        self._connected = True

    async def close(self) -> None:
        self._connected = False

    async def submit(self, orders: list[OrderRequest]) -> None:
        for req in orders:
            self.submit_one(req)

    async def cancel(self, client_order_id: str) -> None:
        self.cancel_one(client_order_id)

    async def cancel_all(self) -> None:
        for coid in list(self._resting):
            self.cancel_one(coid, reason="cancel_all")

    def on_batch(self, batch: BarBatch) -> None:
        """Expire, then match resting orders against this bar; then remember its quotes."""
        if self._resting:
            self._expire(batch)
            self._match(batch)
        self._remember_quotes(batch)

    # --- orders ---------------------------------------------------------------------------------

    def submit_one(self, req: OrderRequest) -> OrderUpdate | None:
        """Accept or reject one order; None (and no event) for an id seen before."""
        if not self._connected:
            raise BrokerError("disconnected", "paper broker: submit before connect()")
        coid = req.client_order_id
        if coid in self._seen:
            return None
        self._seen.add(coid)
        now = self._clock()
        problem = self._validate(req)
        if problem:
            update = OrderUpdate(coid, now, _REJECTED, reason=problem)
        else:
            self._resting[coid] = _Working(req, (req.created_ts or now) // NS_PER_DAY)
            update = OrderUpdate(coid, now, _ACCEPTED, 0, 0.0, coid, "")
        self._emit(update)
        return update

    def _validate(self, req: OrderRequest) -> str:
        """Empty string when the order is acceptable, else the rejection reason."""
        if not req.client_order_id:
            return "client_order_id is empty"
        qty = req.qty
        # a plain int skips the (slow) Integral ABC check; bool is an Integral but no quantity
        if not (type(qty) is int or (isinstance(qty, Integral) and not isinstance(qty, bool))) or qty <= 0:
            return f"qty must be a positive integer, got {req.qty!r}"
        if req.symbol not in self.symbols:
            return f"unknown symbol {req.symbol!r}"
        if req.side not in _SIDES:
            return f"unknown side {req.side!r}"
        if req.tif not in _TIFS:
            return f"unknown time in force {req.tif!r}"
        if req.type == _LIMIT:
            lp = req.limit_price
            if lp is None or not math.isfinite(lp) or lp <= 0:
                return f"limit order needs a positive limit_price, got {lp!r}"
        elif req.type == _MARKET:
            if req.limit_price is not None:
                return f"market order must not have a limit_price, got {req.limit_price!r}"
        else:
            return f"unknown order type {req.type!r}"
        return ""

    def cancel_one(self, client_order_id: str, reason: str = "canceled by client") -> OrderUpdate | None:
        """Cancel an open order; unknown or already closed ids are silently ignored."""
        w = self._resting.pop(client_order_id, None)
        if w is None:
            return None
        return self._close(w, OrderStatus.CANCELED, self._clock(), reason)

    def open_orders(self) -> list[tuple[OrderRequest, int]]:
        """Resting orders (request, shares filled so far), oldest first."""
        return [(w.req, w.filled) for w in self._resting.values()]

    def restore(self, open_orders: list[tuple[OrderRequest, int, OrderStatus]]) -> None:
        """Put a restarted daemon's resting orders back; every id given counts as seen.

        Emits nothing: the store already holds these orders' history. Terminal or fully
        filled entries are only remembered as seen, so resubmitting them is a no-op.
        """
        for req, filled, status in open_orders:
            self._seen.add(req.client_order_id)
            if status.is_terminal or filled >= req.qty or req.client_order_id in self._resting:
                continue
            day = (req.created_ts or self._clock()) // NS_PER_DAY
            st = OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.ACCEPTED
            self._resting[req.client_order_id] = _Working(req, day, filled=max(0, filled), status=st)

    # --- matching -------------------------------------------------------------------------------

    def _expire(self, batch: BarBatch) -> None:
        """DAY orders do not survive into a later UTC calendar day."""
        today = batch.ts // NS_PER_DAY
        for coid, w in list(self._resting.items()):
            if w.req.tif == _DAY and today > w.day:
                del self._resting[coid]
                self._close(w, OrderStatus.EXPIRED, batch.ts, "day order expired")

    def _match(self, batch: BarBatch) -> None:
        resting = self._resting
        # snapshot: the sink may submit or cancel orders while we emit fills
        for w in list(resting.values()):
            if w.req.client_order_id not in resting:
                continue  # canceled by the sink during this batch
            i = self._locate(batch, w.req.symbol)
            if i is not None:
                self._try_fill(w, batch, i)

    def _locate(self, batch: BarBatch, symbol: str) -> int | None:
        """Position of ``symbol`` in the batch (aligned with the SymbolIndex by contract)."""
        i = self.symbols.get(symbol)
        if i is not None and i < len(batch.symbols) and batch.symbols[i] == symbol:
            return i
        try:
            return batch.symbols.index(symbol)
        except ValueError:
            return None

    # Per fill the scalar path below runs a few times per bar; numpy scalars are read once and
    # turned into Python floats (same IEEE arithmetic, a fraction of the cost per operation).

    def _try_fill(self, w: _Working, batch: BarBatch, i: int) -> None:
        volume = float(batch.volume[i])
        if not batch.valid[i] or not volume > 0:
            return
        qty = int(min(w.req.qty - w.filled, math.floor(self.config.participation * volume)))
        if qty <= 0:
            return
        price = self._fill_price(w.req, batch, i)
        if price is None:
            return
        self._execute(w, qty, price, batch.ts)

    def _fill_price(self, req: OrderRequest, batch: BarBatch, i: int) -> float | None:
        """Execution price on bar ``i`` of ``batch``, or None when the order does not trade."""
        o = float(batch.open[i])
        if not (math.isfinite(o) and o > 0):
            return None
        if req.type is _MARKET:
            cost = (self._half_spread_bps(i) + self.config.slippage_bps) / 1e4
            return o * (1 + cost) if req.side is _BUY else o * (1 - cost)
        limit = float(req.limit_price)  # validated at submit
        if req.side is _BUY:
            return min(o, limit) if float(batch.low[i]) <= limit else None
        return max(o, limit) if float(batch.high[i]) >= limit else None

    def _half_spread_bps(self, i: int) -> float:
        """Half the spread of the last quote known before the current bar, in bps of mid."""
        if i >= len(self._bid):
            return 0.0
        bid, ask = float(self._bid[i]), float(self._ask[i])
        if not (bid > 0 and ask >= bid):  # NaN fails these comparisons too
            return 0.0
        return (ask - bid) / (ask + bid) * 1e4  # (ask-bid)/2 over mid (ask+bid)/2

    def _execute(self, w: _Working, qty: int, price: float, ts: int) -> None:
        req = w.req
        coid = req.client_order_id
        filled = w.filled = w.filled + qty
        w.known_qty += qty
        w.known_notional += qty * price
        # cumulative filled qty strictly increases per order, so the id is unique and stable
        # across a restore (restored orders continue from their stored filled count)
        # (positional: keyword arguments cost a frozen dataclass's __init__ noticeably more)
        self._emit(Fill(f"{coid}-{filled}", coid, req.symbol, req.side, qty, price,
                        commission(self.config.commission, qty, price), ts))
        if filled == req.qty:
            self._resting.pop(coid, None)
            w.status = _FILLED
        else:
            w.status = _PARTIALLY_FILLED
        self._emit(self._update(w, ts, ""))

    def _remember_quotes(self, batch: BarBatch) -> None:
        """Keep the latest usable bid/ask per symbol (vectorised; the no-order hot path)."""
        n = len(batch.bid)
        if n > len(self._bid):
            grow = n - len(self._bid)
            self._bid = np.concatenate([self._bid, np.full(grow, np.nan)])
            self._ask = np.concatenate([self._ask, np.full(grow, np.nan)])
        ok = batch.bid > 0
        ok &= batch.ask >= batch.bid
        np.copyto(self._bid[:n], batch.bid, where=ok)
        np.copyto(self._ask[:n], batch.ask, where=ok)

    # --- events -----------------------------------------------------------------------------

    def _close(self, w: _Working, status: OrderStatus, ts: int, reason: str) -> OrderUpdate:
        w.status = status
        update = self._update(w, ts, reason)
        self._emit(update)
        return update

    @staticmethod
    def _update(w: _Working, ts: int, reason: str) -> OrderUpdate:
        coid = w.req.client_order_id
        # (client_order_id, ts, status, filled_qty, avg_fill_price, broker_order_id, reason)
        return OrderUpdate(coid, ts, w.status, w.filled, w.avg_price, coid, reason)

    def _emit(self, event: BrokerEvent) -> None:
        if self._sink is None:
            self._undelivered.append(event)  # never lose a fill because the sink came late
        else:
            self._sink(event)
