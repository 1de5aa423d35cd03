"""Pre-trade checks applied to every order from any source (signals, stops, operator flatten).

Checks, in order (the first failure is the denial's reason code):
duplicate client order id; quantity a positive whole number; symbol known and tradable;
trading state (HALTED: only a flatten that is reduce-only; REDUCING: only reduce-only);
no short unless enabled; a known price; notional per order (every account type, margin
included); position per symbol and gross exposure (orders that grow exposure); price band
(limit within ``price_band_pct`` of the last trade; market orders only with a fresh quote, or for
bar-only sources that never quote a symbol, a fresh print); order rate (token buckets per
second and per minute).

"Reduce-only" means shrinking |position| without flipping, against both the booked position
and position + open orders, so outstanding orders can never combine into a flip. Reduce-only
orders are never denied for rate: a limiter must not trap the account in a losing position, and
they cannot add exposure however many are sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np

from algobotd.config import RiskConfig
from algobotd.domain import NS_PER_SECOND, OrderRequest, OrderType, TradingState
from algobotd.risk.codes import Denial, DenyCode
from algobotd.risk.state import is_reducing
from algobotd.symbols import SymbolIndex

FLATTEN_PREFIX = "flatten"
NEVER = int(np.iinfo(np.int64).min)
# enum members read through their class cost ~0.1 us each; every order reads these
_HALTED = TradingState.HALTED
_REDUCING = TradingState.REDUCING
_LIMIT = OrderType.LIMIT


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``; time comes from the engine's clock."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.ts: int | None = None

    def _refill(self, now: int) -> None:
        if self.ts is not None and now > self.ts:
            self.tokens = min(self.burst, self.tokens + (now - self.ts) / NS_PER_SECOND * self.rate)
        if self.ts is None or now > self.ts:
            self.ts = now

    def available(self, now: int) -> bool:
        self._refill(now)
        return self.tokens >= 1.0

    def take(self, now: int) -> None:
        self._refill(now)
        self.tokens -= 1.0

    def take_if_any(self, now: int) -> None:
        """Take a token when one is available, never overdraw (``available`` then ``take``)."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0


@dataclass(slots=True)
class Book:
    """The engine's view when orders are checked; arrays aligned with the symbol index."""

    now: int
    state: TradingState
    position: np.ndarray  # int64, booked
    pending: np.ndarray  # int64, signed open quantity
    last_price: np.ndarray
    quote_ts: np.ndarray  # int64 ns of the latest valid bid/ask, NEVER if none yet
    trade_ts: np.ndarray  # int64 ns of the latest print / bar close
    equity: float


class PreTrade:
    def __init__(self, cfg: RiskConfig, symbols: SymbolIndex) -> None:
        self.cfg = cfg
        self.symbols = symbols
        self.restricted = frozenset(cfg.restricted_symbols)
        self.seen_ids: set[str] = set()
        self.per_second = TokenBucket(cfg.orders_per_second, max(1.0, cfg.orders_per_second))
        self.per_minute = TokenBucket(cfg.orders_per_minute / 60.0, max(1.0, cfg.orders_per_minute))

    def check(self, orders: list[OrderRequest], book: Book) -> tuple[list[OrderRequest], list[Denial]]:
        """Approved orders (in the given order) and denials; later orders see earlier approvals."""
        held = book.position + book.pending
        # prices are positive or NaN (never marked): NaN counts 0 (fmax skips NaN; np.where costs
        # ~3x, np.nan_to_num ~10x more)
        px_all = np.fmax(book.last_price, 0.0)
        gross = float(np.abs(held) @ px_all)
        approved: list[OrderRequest] = []
        denied: list[Denial] = []
        for req in orders:
            result = self._check_one(req, book, held, gross)
            if isinstance(result, Denial):
                denied.append(result)
                continue
            i, signed, grow_value = result
            held[i] += signed
            gross += grow_value
            self.seen_ids.add(req.client_order_id)
            approved.append(req)
        return approved, denied

    def _check_one(self, req: OrderRequest, book: Book, held: np.ndarray, gross: float) -> Denial | tuple[int, int, float]:
        # runs for every order: Python scalars read once, no closure, no ABC check for a plain int
        cfg = self.cfg
        qty, symbol, cid = req.qty, req.symbol, req.client_order_id
        if cid in self.seen_ids:
            return Denial(cid, symbol, 0, DenyCode.DUPLICATE_ID, f"client order id {cid} was already used")
        if not (type(qty) is int or (isinstance(qty, Integral) and not isinstance(qty, bool))) or qty <= 0:
            return Denial(cid, symbol, 0, DenyCode.BAD_QTY, f"quantity must be a positive whole number, got {qty!r}")
        signed = int(qty) * req.side.sign
        i = self.symbols.get(symbol)
        if i is None or i >= len(book.position):
            return Denial(cid, symbol, signed, DenyCode.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}")
        if symbol in self.restricted:
            return Denial(cid, symbol, signed, DenyCode.NOT_TRADABLE, f"{symbol} is restricted")
        pos, h = int(book.position[i]), int(held[i])
        reduce_only = is_reducing(pos, signed) and is_reducing(h, signed)
        state = book.state
        if state is _HALTED and not (req.reason.startswith(FLATTEN_PREFIX) and reduce_only):
            if req.reason.startswith(FLATTEN_PREFIX):
                return Denial(cid, symbol, signed, DenyCode.STATE_HALTED, f"HALTED: flatten order {signed:+d} is not "
                              f"reduce-only against position {pos} (with open orders {h})")
            return Denial(cid, symbol, signed, DenyCode.STATE_HALTED, "HALTED allows only an operator flatten")
        if state is _REDUCING and not reduce_only:
            return Denial(cid, symbol, signed, DenyCode.STATE_REDUCING, f"REDUCING allows only orders that shrink the "
                          f"position without flipping: position {pos}, with open orders {h}, order {signed:+d}")
        if not cfg.allow_short and h + signed < 0 and not reduce_only:
            return Denial(cid, symbol, signed, DenyCode.SHORT_NOT_ALLOWED,
                          f"would leave {h + signed} shares (short selling is off)")
        px = float(book.last_price[i])
        if not px > 0:
            return Denial(cid, symbol, signed, DenyCode.NO_PRICE, f"no last price for {symbol}")
        is_limit = req.type is _LIMIT
        order_px = float(req.limit_price) if is_limit and req.limit_price else px
        if qty * order_px > cfg.max_order_value:
            return Denial(cid, symbol, signed, DenyCode.MAX_ORDER_VALUE,
                          f"{qty * order_px:,.0f} USD > {cfg.max_order_value:,.0f} per order")
        grow_value = (abs(h + signed) - abs(h)) * px
        if not reduce_only and grow_value > 0:
            cap = cfg.max_position_pct * book.equity
            if abs(h + signed) * px > cap * (1 + 1e-9):
                return Denial(cid, symbol, signed, DenyCode.MAX_POSITION, f"{symbol} would be "
                              f"{abs(h + signed) * px:,.0f} USD > {cap:,.0f} ({cfg.max_position_pct:.0%} of equity)")
            gcap = cfg.max_gross_pct * book.equity
            if gross + grow_value > gcap * (1 + 1e-9):
                return Denial(cid, symbol, signed, DenyCode.MAX_GROSS,
                              f"gross exposure would be {gross + grow_value:,.0f} USD > {gcap:,.0f}")
        if is_limit:
            lp = req.limit_price
            if lp is None or not lp > 0 or abs(lp / px - 1) > cfg.price_band_pct:
                return Denial(cid, symbol, signed, DenyCode.PRICE_BAND,
                              f"limit {lp!r} outside {cfg.price_band_pct:.1%} of last trade {px:.4f}")
        else:
            quote_ts = int(book.quote_ts[i])
            quoted = quote_ts != NEVER
            seen = quote_ts if quoted else int(book.trade_ts[i])
            age = (book.now - seen) / NS_PER_SECOND if seen != NEVER else float("inf")
            if age > cfg.quote_max_age_seconds:
                what = "quote" if quoted else "price"
                return Denial(cid, symbol, signed, DenyCode.STALE_QUOTE,
                              f"market order needs a fresh {what}; last is {age:.0f}s old")
        now = book.now
        if not reduce_only and not (self.per_second.available(now) and self.per_minute.available(now)):
            return Denial(cid, symbol, signed, DenyCode.RATE_LIMIT, f"order rate above "
                          f"{cfg.orders_per_second:g}/s or {cfg.orders_per_minute:g}/min")
        self.per_second.take_if_any(now)  # reduce-only orders use tokens when there are some
        self.per_minute.take_if_any(now)
        return i, signed, grow_value
