"""The engine's risk steps, kept apart from its hot path (``Engine`` inherits this mixin).

Call points in ``Engine``:
- ``process``: after marking -> :meth:`_risk_after_mark` (stops on every symbol's new price,
  then breakers; stop orders go out through ``send`` unless the state is HALTED);
- ``_orders_from``: :meth:`_risk_targets` (fractional-Kelly targets, explanations stored);
- ``send``: :meth:`_pretrade` first; denied orders are stored and never reach the broker;
- live adapters: :meth:`on_price_update` per quote / trade;
- the daemon: :meth:`risk_tick` every second (stale data, broker link, reject rate) and
  :meth:`enforce_state_on_start` after a restart (a HALTED daemon cancels what is resting).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from algobotd.domain import BarBatch, OrderRequest, OrderStatus, OrderUpdate, TradingState
from algobotd.risk.breakers import PortfolioView, Reading
from algobotd.risk.codes import DenyCode
from algobotd.risk.pretrade import FLATTEN_PREFIX, Book
from algobotd.risk.state import is_reducing

if TYPE_CHECKING:
    from algobotd.book import BookState
    from algobotd.engine import Engine
    from algobotd.models.base import Prediction


def split_exit(signed_qty: int, price: float, max_value: float) -> list[int]:
    """Split an exit into child orders of at most ``max_value`` notional (same sign, same total)."""
    if not (price > 0) or abs(signed_qty) * price <= max_value:
        return [signed_qty]
    per = max(1, int(math.floor(max_value / price)))
    sign = 1 if signed_qty > 0 else -1
    left, out = abs(signed_qty), []
    while left > 0:  # a handful of children at most for any sane cap
        take = min(per, left)
        out.append(sign * take)
        left -= take
    return out


class RiskHooks:
    # --- per batch ---------------------------------------------------------------------------

    async def _risk_after_mark(self: Engine, batch: BarBatch, now: int,  # type: ignore[misc]
                               values: list[tuple[float, float]]) -> None:
        """``values``: (equity, gross exposure) of every book, as just marked."""
        self.risk.observe(batch, batch.ts + self.bar_ns)
        await self._stops_and_breakers(now, values, None)

    def _held(self: Engine) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[misc]
        n = min(len(self.pending), len(self.portfolio.qty))
        return self.portfolio.qty[:n], self.portfolio.qty[:n] + self.pending[:n]

    async def _stops_and_breakers(self: Engine, now: int, values: list[tuple[float, float]],  # type: ignore[misc]
                                  idx: np.ndarray | None) -> None:
        pf = self.portfolio
        qty, held = self._held()
        n = len(qty)
        stops = self.risk.check_stops(qty, held, pf.avg_cost[:n], pf.last[:n], idx)
        if self.book_size:
            worst = self.risk.worst_loss_by_book(qty, pf.avg_cost[:n], pf.last[:n])
        else:  # a full check (idx None) looked at every position already; a subset check did not
            worst = [stops.worst_loss if idx is None else self.risk.worst_position_loss(qty, pf.avg_cost[:n], pf.last[:n])]
        connected = self.broker.connected
        books = range(len(self.books))
        if self.book_size:  # lockstep: only the books where a breaker can trip (almost never one)
            books = self.risk.books_that_may_trip(
                now, np.array([v[0] for v in values]), np.array([bk.day_start_equity for bk in self.books]),
                np.array([bk.portfolio.high_water_mark for bk in self.books]), np.array(worst), connected)
        for b in books:
            bk, (equity, gross) = self.books[b], values[b]
            view = PortfolioView(now, equity, bk.day_start_equity, bk.portfolio.high_water_mark, gross, worst[b],
                                 connected)
            await self._apply_trip(bk, bk.breakers.trip(view), now)
        if stops.index.size == 0:
            return
        orders: list[OrderRequest] = []
        names = self.symbols.symbols
        for i, q, kind, loss in zip(stops.index.tolist(), stops.signed_qty.tolist(), stops.kind, stops.loss.tolist()):
            state = self.book_of(i).state.state
            if state is TradingState.HALTED:
                if kind == "stop:soft":
                    self.risk.stops.rearm_soft(i)  # nothing goes out while halted; retry after resume
                continue
            for child in split_exit(int(q), float(pf.last[i]), self.cfg.risk.max_order_value):
                orders.append(self._new_order(names[i], child, kind, now))
            self.risk.record_stop(now, names[i], kind, loss, int(q), state)
            self.record_event(now, "stop", f"{kind} {names[i]} {int(q):+d} at loss {loss:.2%}")
        if orders:
            await self.send(orders)

    async def _apply_trip(self: Engine, bk: BookState, trip: tuple[TradingState, list[Reading]] | None,  # type: ignore[misc]
                          now: int) -> None:
        if trip is None:
            return
        state, why = trip
        reason = "; ".join(f"{r.name} {r.value:.4g} >= {r.threshold:.4g}" for r in why)
        change = bk.state.escalate(state, reason, "breaker:" + ",".join(r.name for r in why), now)
        if change is None:
            return  # already at (or below) that state: each trip is recorded once
        bk.breaker_trips += len(why)
        self.risk.record_trip(change, why)
        self.record_event(now, "breaker", reason)
        await self.set_state(change, bk)

    def _risk_targets(self: Engine, pred: Prediction, batch: BarBatch, held: np.ndarray,  # type: ignore[misc]
                      price: np.ndarray) -> tuple[np.ndarray, float | np.ndarray]:
        """(targets, the equity they were sized on: one per book when there are several)."""
        entry, exit = self.model.entry, self.model.exit
        if self.book_size:
            equity = np.array([bk.portfolio.equity for bk in self.books])
            states = [bk.state.state for bk in self.books]
            return self.risk.size_books(pred, batch, entry, exit, held, price, equity, states).target, equity
        equity1 = self.portfolio.equity
        return self.risk.size(pred, batch, entry, exit, held, price, equity1, self.state.state).target, equity1

    # --- every order -------------------------------------------------------------------------

    def _pretrade(self: Engine, orders: list[OrderRequest]) -> list[OrderRequest]:  # type: ignore[misc]
        if not self.book_size:
            return self._pretrade_book(self.books[0], orders)
        by_book: dict[int, list[OrderRequest]] = {}
        for o in orders:
            by_book.setdefault(self.symbols[o.symbol] // self.book_size, []).append(o)
        return [a for b, some in by_book.items() for a in self._pretrade_book(self.books[b], some)]

    def _pretrade_book(self: Engine, bk: BookState, orders: list[OrderRequest]) -> list[OrderRequest]:  # type: ignore[misc]
        pf = self.portfolio
        n = min(len(self.pending), len(pf.qty))
        self.risk._grow(n)
        now = self.clock.now()
        part = slice(bk.start, n if bk.stop is None else bk.stop)
        book = Book(now, bk.state.state, pf.qty[part], self.pending[part], pf.last[part], self.risk.quote_ts[part],
                    self.risk.trade_ts[part], bk.portfolio.equity)
        approved, denied = bk.pretrade.check(orders, book)
        if denied:
            by_id = {o.client_order_id: o for o in orders}
            self.risk.record_denials(denied, by_id, now, bk.state.state)
            for d in denied:
                if by_id[d.client_order_id].reason == "stop:soft":
                    i = self.symbols.get(d.symbol)
                    if i is not None:
                        self.risk.stops.rearm_soft(i)
                self.record_event(now, "denial", f"{d.symbol} {d.signed_qty:+d} denied: {d.text}")
            self._notify("risk")
        if approved:
            bk.breakers.on_sent(now, len(approved))
        return approved

    def _still_allowed(self: Engine, orders: list[OrderRequest]) -> list[OrderRequest]:  # type: ignore[misc]
        """After the write-ahead barrier: the state may have gone down meanwhile (operator or breaker
        during the await). HALTED: only flatten orders go; REDUCING: only reduce-only ones. The
        others are closed as rejected (their rows exist already) and never reach the broker."""
        if all(bk.state.state is TradingState.ACTIVE for bk in self.books):
            return orders
        qty, held = self._held()
        held = held.copy()
        for o in orders:  # these orders are already in pending: look at the books without them
            held[self.symbols[o.symbol]] -= o.side.sign * o.qty
        keep: list[OrderRequest] = []
        now = self.clock.now()
        for o in orders:
            i, signed = self.symbols[o.symbol], o.side.sign * o.qty
            state = self.book_of(i).state.state
            reducing = is_reducing(int(qty[i]), signed) and is_reducing(int(held[i]), signed)
            ok = state is TradingState.ACTIVE or (
                reducing and (state is TradingState.REDUCING or o.reason.startswith(FLATTEN_PREFIX)))
            if ok:
                keep.append(o)
                held[i] += signed
                continue
            code = DenyCode.STATE_HALTED if state is TradingState.HALTED else DenyCode.STATE_REDUCING
            # CANCELED, not REJECTED: our own decision must not count toward the broker reject rate
            self._on_update(OrderUpdate(o.client_order_id, now, OrderStatus.CANCELED,
                                        reason=f"risk:{code.value}: {state.value} before submission"))
        return keep

    # --- live price updates, timers, start-up ------------------------------------------------

    async def on_price_update(self: Engine, symbol: str, ts: int, price: float | None = None,  # type: ignore[misc]
                              bid: float | None = None, ask: float | None = None) -> None:
        """A quote or trade between bars: mark it, check that symbol's stops and the breakers.

        For the live adapters (Alpaca/IB streams). A trade print marks at its price; a quote
        alone marks at its mid. Invalid values are ignored (the feed edge counts them).
        """
        i = self.symbols.get(symbol)
        if i is None:
            return
        quoted = bid is not None and ask is not None and bid > 0 and ask >= bid
        traded = price is not None and price > 0 and math.isfinite(price)
        if not (quoted or traded):
            return
        mark = float(price) if traded else (float(bid) + float(ask)) / 2.0  # type: ignore[arg-type]
        self.portfolio.mark_symbol(symbol, mark)
        if quoted:
            self.risk.observe_price(i, ts, True)
        if traded:
            self.risk.observe_price(i, ts, False)
        equity, gross, _net, _unrealized = self.portfolio.valuation()
        self.portfolio.update_hwm(equity)
        await self._stops_and_breakers(self.clock.now(), [(equity, gross)], np.array([i], dtype=np.int64))
        self._notify("positions", "risk")

    async def risk_tick(self: Engine) -> None:  # type: ignore[misc]
        """Breakers that can trip without new prices: stale data, broker link, reject rate."""
        values = [bk.portfolio.valuation()[:2] for bk in self.books]
        await self._stops_and_breakers(self.clock.now(), values, np.empty(0, dtype=np.int64))

    async def enforce_state_on_start(self: Engine) -> None:  # type: ignore[misc]
        """A daemon that stopped HALTED starts HALTED: whatever still rests at the venue is cancelled."""
        if self.state.state is TradingState.HALTED and self.open_orders:
            n = len(self.open_orders)
            await self.broker.cancel_all()
            self.record_event(self.clock.now(), "state", f"HALTED at start-up: cancelled {n} open orders")
        orphans = self.outside_universe()
        if orphans:  # no prices and no stops for these: an operator must look before new risk is added
            await self.set_state(self.state.escalate(
                TradingState.REDUCING, f"positions/orders in symbols the feed does not carry: {', '.join(orphans)}",
                "breaker:universe", self.clock.now()))

    def _flatten_orders(self: Engine, actor: str, now: int) -> list[OrderRequest]:  # type: ignore[misc]
        """Orders that take every held position (booked + still open) to zero, reduce-only by construction."""
        qty, held = self._held()
        orders: list[OrderRequest] = []
        names = self.symbols.symbols
        for i in np.flatnonzero(qty).tolist():
            signed = -int(held[i])
            if not is_reducing(int(qty[i]), signed):
                continue  # an open order already covers it (or it would flip): nothing to add
            for child in split_exit(signed, float(self.portfolio.last[i]), self.cfg.risk.max_order_value):
                orders.append(self._new_order(names[i], child, f"flatten by {actor}", now))
        return orders

    def stop_levels(self: Engine) -> dict[str, tuple[float, float]]:  # type: ignore[misc]
        """symbol -> (soft stop price, hard stop price) for open positions."""
        pf = self.portfolio
        soft, hard = self.risk.stops.levels(pf.qty, pf.avg_cost)
        names = self.symbols.symbols
        return {names[i]: (float(soft[i]), float(hard[i])) for i in np.flatnonzero(pf.qty).tolist() if i < len(names)}

    def breaker_status(self: Engine) -> list[dict[str, object]]:  # type: ignore[misc]
        """Every breaker's value / threshold / tripped right now (for status snapshots; changes no state)."""
        equity, gross, _net, _unrealized = self.portfolio.valuation()
        qty, _held = self._held()
        n = len(qty)
        worst = self.risk.worst_position_loss(qty, self.portfolio.avg_cost[:n], self.portfolio.last[:n])
        view = PortfolioView(self.clock.now(), equity, self.day_start_equity, self.portfolio.high_water_mark, gross,
                             worst, self.broker.connected)
        self.risk.check_breakers(view)
        cur = self.state.current
        by_operator = cur.state is not TradingState.ACTIVE and cur.actor.startswith("operator")
        return [*self.risk.breaker_rows(),
                {"name": "operator", "value": float(cur.state.severity if by_operator else 0), "threshold": 1.0,
                 "tripped": by_operator}]
