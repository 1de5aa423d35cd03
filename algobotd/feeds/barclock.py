"""Groups per-symbol live bars into one ``BarBatch`` per interval.

Live feeds (Alpaca, IB) deliver one ``Bar`` per symbol at slightly different moments;
the engine wants one batch per interval across the whole universe. An interval closes
when every symbol reported, or when the grace period after its end has passed (a bar
of a later interval or ``flush_due(now_ns)`` tells us so); symbols that did not report
are ``valid=False`` with NaN values.

Intervals are the grid of multiples of ``bar_seconds`` since the epoch; a bar belongs to
the interval containing its ``ts``. With ``source_seconds < bar_seconds`` (e.g. IB's
5-second real-time bars into 1-minute batches) sub-bars are aggregated, and a symbol
counts as reported once its sub-bar ending at the interval end arrived.

Validation at the edge: bad bars are never emitted, only counted in ``dropped`` by
reason (``unknown_symbol``, ``nan``, ``non_positive_price``, ``high_below_low``,
``ohlc_inconsistent``, ``negative_volume``, ``duplicate``, ``out_of_order``, ``late``;
quotes: ``quote_unknown_symbol``, ``quote_invalid``, ``quote_late``; trades: ``trade_unknown_symbol``,
``trade_invalid``, ``trade_late``). Quotes and trades inside an interval also give the batch
its ``IntrabarFlow`` (order-flow imbalance, depth, tick-rule signed volume) for the
microstructure features.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from algobotd.domain import NS_PER_SECOND, Bar, BarBatch, IntrabarFlow, Quote, Trade

_NEVER = -(1 << 63)


class _Interval:
    __slots__ = ("start", "open", "high", "low", "close", "volume", "valid", "done", "n_done",
                 "bid", "ask", "quote_ts", "ofi", "bid_size", "ask_size", "buy", "sell", "quoted", "traded")

    def __init__(self, start: int, n: int) -> None:
        self.start = start
        self.open, self.high, self.low, self.close, self.volume = (np.full(n, np.nan) for _ in range(5))
        self.valid = np.zeros(n, dtype=bool)  # got at least one bar
        self.done = np.zeros(n, dtype=bool)  # got the bar that ends the interval
        self.n_done = 0
        self.bid = np.full(n, np.nan)
        self.ask = np.full(n, np.nan)
        self.quote_ts = [_NEVER] * n
        # intrabar flow: CKS order-flow imbalance over the quote updates, depth at the end,
        # tick-rule signed trade volume (NaN in the batch where a symbol had none)
        self.ofi = np.zeros(n)
        self.bid_size = np.full(n, np.nan)
        self.ask_size = np.full(n, np.nan)
        self.buy = np.zeros(n)
        self.sell = np.zeros(n)
        self.quoted = np.zeros(n, dtype=bool)
        self.traded = np.zeros(n, dtype=bool)

    def flow(self) -> IntrabarFlow | None:
        if not (self.quoted.any() or self.traded.any()):
            return None
        nan = np.nan
        return IntrabarFlow(np.where(self.quoted, self.ofi, nan), self.bid_size, self.ask_size,
                            np.where(self.traded, self.buy, nan), np.where(self.traded, self.sell, nan))


def bar_problem(bar: Bar) -> str | None:
    """Why a bar must not reach the features, or None when it is fine."""
    o, h, l, c, v = bar.open, bar.high, bar.low, bar.close, bar.volume
    if not (math.isfinite(o) and math.isfinite(h) and math.isfinite(l) and math.isfinite(c) and math.isfinite(v)):
        return "nan"
    if o <= 0 or h <= 0 or l <= 0 or c <= 0:
        return "non_positive_price"
    if h < l:
        return "high_below_low"
    if h < max(o, c) or l > min(o, c):
        return "ohlc_inconsistent"
    if v < 0:
        return "negative_volume"
    return None


class BarClock:
    def __init__(self, symbols: Sequence[str], bar_seconds: int, grace_seconds: float,
                 source_seconds: int | None = None) -> None:
        self.symbols: tuple[str, ...] = tuple(symbols)
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("BarClock symbols must not repeat")
        self.bar_seconds = bar_seconds
        src = source_seconds or bar_seconds
        if src > bar_seconds or bar_seconds % src:
            raise ValueError(f"source_seconds ({src}) must divide bar_seconds ({bar_seconds})")
        self._bar_ns = bar_seconds * NS_PER_SECOND
        self._src_ns = src * NS_PER_SECOND
        self._grace_ns = int(grace_seconds * NS_PER_SECOND)
        self._index = {s: i for i, s in enumerate(self.symbols)}
        self._open: dict[int, _Interval] = {}
        self._last_ts = [_NEVER] * len(self.symbols)
        self._bid = np.full(len(self.symbols), np.nan)  # last known quote, carried across intervals
        self._ask = np.full(len(self.symbols), np.nan)
        n = len(self.symbols)
        # previous quote (with sizes) and trade per symbol: OFI and the tick rule are O(1) per event
        self._prev_quote: list[tuple[float, float, float, float] | None] = [None] * n
        self._prev_px = [math.nan] * n
        self._prev_sign = [0] * n
        self.closed_upto: int | None = None  # start of the newest closed interval
        self.dropped: dict[str, int] = {}

    def _count(self, reason: str) -> list[BarBatch]:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        return []

    @property
    def pending(self) -> list[int]:
        """Starts of the intervals still open, oldest first."""
        return sorted(self._open)

    def _interval(self, start: int) -> _Interval:
        iv = self._open.get(start)
        if iv is None:
            iv = self._open[start] = _Interval(start, len(self.symbols))
        return iv

    def _is_closed(self, start: int) -> bool:
        return self.closed_upto is not None and start <= self.closed_upto

    def add(self, bar: Bar, now_ns: int | None = None) -> list[BarBatch]:
        """Take one bar; returns the batches it closed (oldest first, often empty).

        Without ``now_ns`` the bar itself proves the time is at least its end, which is
        enough to close *older* intervals whose grace has passed; its own interval closes
        only when complete or via ``flush_due`` (a first bar must not shut out the rest).
        """
        i = self._index.get(bar.symbol)
        if i is None:
            return self._count("unknown_symbol")
        problem = bar_problem(bar)
        if problem:
            return self._count(problem)
        last = self._last_ts[i]
        if bar.ts == last:
            return self._count("duplicate")
        if bar.ts < last:
            return self._count("out_of_order")
        start = bar.ts - bar.ts % self._bar_ns
        if self._is_closed(start):
            return self._count("late")
        iv = self._interval(start)
        if iv.done[i]:
            return self._count("duplicate")  # a second complete bar for the same interval
        self._last_ts[i] = bar.ts
        if iv.valid[i]:  # aggregate a further sub-bar
            iv.high[i] = max(iv.high[i], bar.high)
            iv.low[i] = min(iv.low[i], bar.low)
            iv.close[i] = bar.close
            iv.volume[i] += bar.volume
        else:
            iv.open[i], iv.high[i], iv.low[i], iv.close[i], iv.volume[i] = (
                bar.open, bar.high, bar.low, bar.close, bar.volume)
            iv.valid[i] = True
        if bar.ts + self._src_ns >= start + self._bar_ns:
            iv.done[i] = True
            iv.n_done += 1
        out = self._close_through(start) if iv.n_done == len(self.symbols) else []
        if now_ns is not None:
            out += self.flush_due(now_ns)
        else:
            out += self._flush(bar.ts + self._src_ns, before=start)
        return out

    def add_quote(self, quote: Quote) -> None:
        """Record a quote; a batch's bid/ask is the last quote before its interval ended."""
        i = self._index.get(quote.symbol)
        if i is None:
            self._count("quote_unknown_symbol")
            return
        b, a = quote.bid, quote.ask
        if not (math.isfinite(b) and math.isfinite(a) and 0 < b <= a):
            self._count("quote_invalid")
            return
        start = quote.ts - quote.ts % self._bar_ns
        if self._is_closed(start):
            self._count("quote_late")
            return
        iv = self._interval(start)
        if quote.ts >= iv.quote_ts[i]:
            iv.bid[i], iv.ask[i], iv.quote_ts[i] = b, a, quote.ts
            iv.bid_size[i], iv.ask_size[i] = quote.bid_size, quote.ask_size
        prev = self._prev_quote[i]
        if prev is not None:  # Cont-Kukanov-Stoikov increment against the previous update
            b0, qb0, a0, qa0 = prev
            qb1, qa1 = quote.bid_size, quote.ask_size
            iv.ofi[i] += ((qb1 if b >= b0 else 0.0) - (qb0 if b <= b0 else 0.0)
                          - (qa1 if a <= a0 else 0.0) + (qa0 if a >= a0 else 0.0))
        iv.quoted[i] = True
        self._prev_quote[i] = (b, quote.bid_size, a, quote.ask_size)

    def add_trade(self, trade: Trade) -> None:
        """Record a print: its volume is signed by the tick rule (a repeat price keeps the
        previous sign; with no sign yet the volume is split evenly)."""
        i = self._index.get(trade.symbol)
        if i is None:
            self._count("trade_unknown_symbol")
            return
        px, size = trade.price, trade.size
        if not (math.isfinite(px) and math.isfinite(size) and px > 0 and size >= 0):
            self._count("trade_invalid")
            return
        start = trade.ts - trade.ts % self._bar_ns
        if self._is_closed(start):
            self._count("trade_late")
            return
        iv = self._interval(start)
        last = self._prev_px[i]
        sign = self._prev_sign[i] if not (px != last and last == last) else (1 if px > last else -1)
        if sign > 0:
            iv.buy[i] += size
        elif sign < 0:
            iv.sell[i] += size
        else:
            iv.buy[i] += size / 2.0
            iv.sell[i] += size / 2.0
        iv.traded[i] = True
        self._prev_px[i], self._prev_sign[i] = px, sign

    def flush_due(self, now_ns: int) -> list[BarBatch]:
        """Close every interval whose end + grace is at or before ``now_ns``."""
        return self._flush(now_ns, before=None)

    def _flush(self, now_ns: int, before: int | None) -> list[BarBatch]:
        due = [s for s in self._open
               if s + self._bar_ns + self._grace_ns <= now_ns and (before is None or s < before)]
        return self._close_through(max(due)) if due else []

    def _close_through(self, start: int) -> list[BarBatch]:
        """Close ``start`` and every older open interval, oldest first (batches stay ordered)."""
        out: list[BarBatch] = []
        for s in sorted(k for k in self._open if k <= start):
            iv = self._open.pop(s)
            quoted = ~np.isnan(iv.bid)
            self._bid[quoted] = iv.bid[quoted]
            self._ask[quoted] = iv.ask[quoted]
            if iv.valid.any():  # an interval that only saw quotes (market closed) emits nothing
                out.append(BarBatch(s, self.symbols, iv.open, iv.high, iv.low, iv.close, iv.volume,
                                    iv.valid, self._bid.copy(), self._ask.copy(), flow=iv.flow()))
        self.closed_upto = start if self.closed_upto is None else max(self.closed_upto, start)
        return out
