"""The risk layer the engine holds: sizing, stops, breakers, pre-trade checks and their records.

The engine calls it at fixed points (after marking a batch, per price update, before sending
orders, on fills and rejects); this module owns the arrays and writes the rows that explain
every decision: ``risk_events`` (transitions, breaker trips, denials), ``alerts`` (pending
outbox rows for the ops outbox task), ``sizing_decisions`` and denied ``orders``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from algobotd.config import Config
from algobotd.domain import BarBatch, Fill, OrderRequest, OrderStatus, TradingState, TradingStateChange
from algobotd.models.base import Prediction
from algobotd.risk.breakers import Breakers, PortfolioView, Reading
from algobotd.risk.codes import Denial
from algobotd.risk.pretrade import NEVER, Book, PreTrade
from algobotd.risk.sizing import SizingResult, TradeStats, VolEstimator, _grown, size_targets
from algobotd.risk.stops import StopBook, StopOrders
from algobotd.store.writer import StoreWriter
from algobotd.symbols import SymbolIndex

STATE_ALERT_LEVEL = {TradingState.HALTED: "critical", TradingState.REDUCING: "warning", TradingState.ACTIVE: "info"}


def outbox_row(kind: str, level: str, ts: int, message: str, **fields: Any) -> tuple[Any, ...]:
    """A pending ``alerts`` row in the ops outbox's format (empty channel: the outbox routes it).

    The id is deterministic, so the same event replayed after a restart is one alert.
    """
    aid = hashlib.sha256(f"{kind}|{ts}|{message}".encode()).hexdigest()[:24]
    payload = json.dumps({"message": message, **fields}, default=str)
    return (aid, ts, kind, level, "", payload, "pending", 0, None, None)


class RiskLayer:
    """Per-symbol risk state (volatility, stops, Kelly inputs, data freshness) for the whole index,
    and per book (``book_symbols``: one index per book, Monte Carlo lockstep) the breakers, the
    pre-trade limits and the market volatility. One book (live) covers the whole index."""

    def __init__(self, cfg: Config, symbols: SymbolIndex, store: StoreWriter,
                 book_symbols: list[SymbolIndex] | None = None) -> None:
        self.cfg = cfg
        self.rcfg = cfg.risk
        self.symbols = symbols
        self.store = store
        n = len(symbols)
        books = book_symbols or [symbols]
        self.book_size = 0 if book_symbols is None else n // len(books)
        self.trades = TradeStats(n)
        self.vol = VolEstimator(n, cfg.risk.vol_halflife_bars, cfg.risk.vol_min_bars, len(books))
        self.stops = StopBook(n, cfg.risk)
        self.book_breakers = [Breakers(cfg.risk, cfg.feed.bar_seconds, cfg.feed.grace_seconds) for _ in books]
        self.book_pretrade = [PreTrade(cfg.risk, b) for b in books]
        self.breakers, self.pretrade = self.book_breakers[0], self.book_pretrade[0]  # the (first) book's
        self.quote_ts = np.full(n, NEVER, dtype=np.int64)
        self.trade_ts = np.full(n, NEVER, dtype=np.int64)
        self.denials = 0
        self.last_sizing: SizingResult | None = None

    def _grow(self, n: int) -> None:
        if n > len(self.quote_ts):
            self.quote_ts, self.trade_ts = _grown(self.quote_ts, n, NEVER), _grown(self.trade_ts, n, NEVER)
            self.trades.grow(n)
            self.stops.grow(n)

    # --- inputs ------------------------------------------------------------------------------

    def observe(self, batch: BarBatch, data_ts: int) -> None:
        """A batch's prices: volatility estimates and data freshness (``data_ts`` = bar end)."""
        n = len(batch)
        self._grow(n)
        # the reference index: one price, or with several books one per book (a list)
        ref = batch.refs.get(self.rcfg.market_ref) if self.rcfg.market_ref and batch.refs else None
        self.vol.update(batch.close, batch.valid, ref)
        quoted = (batch.bid > 0) & (batch.ask >= batch.bid)
        np.copyto(self.quote_ts[:n], data_ts, where=quoted)
        np.copyto(self.trade_ts[:n], data_ts, where=batch.valid)
        if np.count_nonzero(batch.valid):
            for breakers in self.book_breakers:
                breakers.on_data(data_ts)

    def observe_price(self, i: int, ts: int, quoted: bool) -> None:
        self._grow(i + 1)
        if quoted:
            self.quote_ts[i] = max(self.quote_ts[i], ts)
        else:
            self.trade_ts[i] = max(self.trade_ts[i], ts)
        self.breakers.on_data(ts)

    def on_fill(self, i: int, fill: Fill) -> None:
        self.trades.on_fill(i, fill)

    def restore(self, fills: list[Fill]) -> None:
        """Kelly inputs from the stored trades history (the same fills the portfolio replays)."""
        for f in fills:
            i = self.symbols.add(f.symbol)
            self._grow(i + 1)
            self.trades.on_fill(i, f)

    # --- decisions ---------------------------------------------------------------------------

    def size(self, pred: Prediction, batch: BarBatch, entry: float, exit: float, held: np.ndarray,
             price: np.ndarray, equity: float, state: TradingState) -> SizingResult:
        result = size_targets(pred.score, pred.confidence, pred.ready & batch.valid, entry, exit, held, price, equity,
                              self.trades, self.vol, self.cfg.feed.bar_seconds, self.rcfg,
                              reduce_only=state is not TradingState.ACTIVE)
        self.last_sizing = result
        return result

    def size_books(self, pred: Prediction, batch: BarBatch, entry: float, exit: float, held: np.ndarray,
                   price: np.ndarray, equity: np.ndarray, states: list[TradingState]) -> SizingResult:
        """:meth:`size` with one equity and state per book; a HALTED book's targets stay where it is."""
        m = self.book_size
        halted = np.repeat(np.array([s is TradingState.HALTED for s in states]), m)
        ready = pred.ready & batch.valid & ~halted
        result = size_targets(pred.score, pred.confidence, ready, entry, exit, held, price, equity, self.trades,
                              self.vol, self.cfg.feed.bar_seconds, self.rcfg,
                              reduce_only=np.array([s is not TradingState.ACTIVE for s in states]), book_size=m)
        if np.count_nonzero(halted):
            result.target[halted] = held[halted]
        self.last_sizing = result
        return result

    def books_that_may_trip(self, now: int, equity: np.ndarray, day_start: np.ndarray, hwm: np.ndarray,
                            worst: np.ndarray, connected: bool) -> list[int]:
        """The books whose breakers can trip now (lockstep): for every other book each breaker's
        condition is false, so ``Breakers.trip`` would return None -- the same test, vectorised
        (numpy's float64 arithmetic is Python's), and conservative where it is not exact."""
        cfg = self.rcfg
        everyone = range(len(self.book_breakers))
        if (not connected or cfg.max_reject_rate <= 0
                or self.book_breakers[0].data_gap(now) >= self.book_breakers[0].stale_after):
            return list(everyone)
        day_loss = np.where(day_start > 0, 1.0 - equity / np.where(day_start > 0, day_start, 1.0), 0.0)
        drawdown = np.where(hwm > 0, 1.0 - equity / np.where(hwm > 0, hwm, 1.0), 0.0)
        hit = (day_loss >= cfg.daily_loss_pct) | (drawdown >= cfg.max_drawdown_pct) | (worst >= cfg.halt_position_loss_pct)
        return [b for b in everyone if hit[b] or self.book_breakers[b].has_rejects]

    def worst_loss_by_book(self, qty: np.ndarray, avg_cost: np.ndarray, price: np.ndarray) -> list[float]:
        """The worst position loss of every book (0.0 for a book without a priced position), the
        numbers :meth:`worst_position_loss` gives book by book."""
        s = np.sign(qty)
        live = (s != 0) & (price > 0) & (avg_cost > 0)
        safe = np.where(live, avg_cost, 1.0)
        loss = np.where(live, s * (safe - price) / safe, -np.inf).reshape(-1, self.book_size).max(axis=1)
        return np.where(loss > -np.inf, loss, 0.0).tolist()

    def check_stops(self, qty: np.ndarray, held: np.ndarray, avg_cost: np.ndarray, price: np.ndarray,
                    idx: np.ndarray | None = None) -> StopOrders:
        return self.stops.check(qty, held, avg_cost, price, idx)

    def worst_position_loss(self, qty: np.ndarray, avg_cost: np.ndarray, price: np.ndarray) -> float:
        s = np.sign(qty)
        live = (s != 0) & (price > 0) & (avg_cost > 0)
        if not live.any():
            return 0.0
        loss = s[live] * (avg_cost[live] - price[live]) / avg_cost[live]
        return float(loss.max())

    def check_breakers(self, view: PortfolioView) -> list[Reading]:
        return self.breakers.check(view)

    def check_orders(self, orders: list[OrderRequest], book: Book) -> tuple[list[OrderRequest], list[Denial]]:
        return self.pretrade.check(orders, book)

    # --- records -----------------------------------------------------------------------------

    def record_denials(self, denials: list[Denial], orders: dict[str, OrderRequest], now: int, state: TradingState) -> None:
        """A denied order is stored (status rejected, reason code) and never reaches the broker."""
        for d in denials:
            self.denials += 1
            req = orders[d.client_order_id]
            seq = _seq(req.client_order_id)
            self.store.add("orders", (req.client_order_id, seq, req.created_ts or now, req.symbol, req.side.value,
                                      req.qty if isinstance(req.qty, int) else 0, req.type.value, req.limit_price,
                                      req.tif.value, req.reason, OrderStatus.REJECTED.value, 0, 0.0, "",
                                      f"risk:{d.text}", now))
            self.store.add("risk_events", (now, "denial", d.code.value, float(d.signed_qty), None, state.value,
                                           f"{d.symbol} {d.signed_qty:+d} ({req.reason}): {d.message}"))
            self.store.add("alerts", outbox_row("risk_denial", "warning", now, f"order {d.client_order_id} denied: {d.text}",
                                                symbol=d.symbol, code=d.code.value, qty=d.signed_qty, source=req.reason))

    def record_trip(self, change: TradingStateChange, tripped: list[Reading]) -> None:
        for r in tripped:
            self.store.add("risk_events", (change.ts, "breaker", r.name, r.value, r.threshold, change.state.value,
                                           f"{r.name} {r.value:.4g} >= {r.threshold:.4g}"))

    def record_stop(self, ts: int, symbol: str, kind: str, loss: float, signed_qty: int, state: TradingState) -> None:
        level = {"stop:soft": self.rcfg.soft_stop_pct, "stop:hard": self.rcfg.hard_stop_pct}.get(kind, self.rcfg.trailing_stop_pct)
        self.store.add("risk_events", (ts, "stop", kind, loss, level, state.value, f"{symbol} {signed_qty:+d} at loss {loss:.2%}"))

    def record_state(self, change: TradingStateChange) -> None:
        self.store.add("alerts", outbox_row("risk_state", STATE_ALERT_LEVEL[change.state], change.ts,
                                            f"trading state {change.state.value} by {change.actor}: {change.reason}",
                                            state=change.state.value, actor=change.actor, reason=change.reason))

    def record_sizing(self, orders: list[OrderRequest], index: np.ndarray, sizing: SizingResult, pred: Prediction,
                      held: np.ndarray, price: np.ndarray, equity: float | np.ndarray, now: int) -> None:
        """The inputs behind each signal order (one row per order, numpy columns)."""
        if not orders:
            return
        k = index  # the orders' symbols, in order: their codes in the index (the store decodes them)
        columns = {
            "client_order_id": np.array([o.client_order_id for o in orders], dtype=object), "symbol": k,
            "score": pred.score[k], "confidence": pred.confidence[k], "win_rate": sizing.win_rate[k],
            "payoff": sizing.payoff[k], "kelly_full": sizing.kelly_full[k], "vol_ratio": sizing.vol_ratio[k],
            "sigma_annual": sizing.sigma_annual[k], "weight": sizing.weight[k], "price": price[k],
            "held_qty": held[k].astype(np.int64), "target_qty": sizing.target[k].astype(np.int64),
        }
        constants: dict[str, Any] = {"ts": now, "kelly_fraction": self.rcfg.kelly_fraction}
        # one value per batch, or (several books) one per book: per order then
        for name, value in (("budget_scale", sizing.scale), ("equity", equity)):
            if isinstance(value, np.ndarray):
                columns[name] = value[k // self.book_size]
            else:
                constants[name] = value
        self.store.add_columns("sizing_decisions", columns, constants)

    # --- status ------------------------------------------------------------------------------

    def breaker_rows(self) -> list[dict[str, Any]]:
        return [{"name": r.name, "value": float(r.value), "threshold": float(r.threshold), "tripped": bool(r.tripped)}
                for r in self.breakers.last]


def _seq(client_order_id: str) -> int:
    try:
        return int(client_order_id.split("-")[1])
    except (IndexError, ValueError):
        return 0

