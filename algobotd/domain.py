"""Domain records shared by every part of the daemon.

Conventions (everything relies on them):
- timestamps are ``int`` nanoseconds since the Unix epoch, UTC;
- a bar's ``ts`` is the *start* of its interval; it is complete at ``ts + interval``;
- quantities are ``int`` shares, signed for positions (short < 0) and always
  positive on orders and fills (the side gives the direction);
- prices and cash are ``float`` (checked against tolerances, never compared exactly).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Self

import numpy as np

NS_PER_SECOND = 1_000_000_000


class Side(enum.StrEnum):
    # +1 buy, -1 sell: a plain member attribute, not a property, because every order and
    # fill reads it several times (a property call costs ~5x an attribute read)
    sign: int

    def __new__(cls, value: str, sign: int) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.sign = sign
        return member

    BUY = "buy", 1
    SELL = "sell", -1


class OrderType(enum.StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(enum.StrEnum):
    DAY = "day"
    GTC = "gtc"


class OrderStatus(enum.StrEnum):
    NEW = "new"  # written ahead, not yet acknowledged by the venue
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_open(self) -> bool:
        return not self.is_terminal


_TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


class TradingState(enum.StrEnum):
    """Ordered from most to least permissive; automatic moves only go down."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


@dataclass(frozen=True, slots=True)
class Bar:
    symbol: str
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    ts: int
    bid: float
    ask: float
    bid_size: float = 0.0
    ask_size: float = 0.0


@dataclass(frozen=True, slots=True)
class Trade:
    """A print on the tape (market data), not one of our executions (see Fill)."""

    symbol: str
    ts: int
    price: float
    size: float


@dataclass(frozen=True, slots=True)
class News:
    id: str
    ts: int
    symbols: tuple[str, ...]
    headline: str
    summary: str = ""
    source: str = ""
    sentiment: float | None = None


@dataclass(frozen=True, slots=True)
class OptionsSnapshot:
    """Summary of one underlying's option chain at ``ts`` (alternative-data features).

    Volumes are contracts traded since the previous snapshot; implied vols are annualised
    fractions (0.2 = 20%): at the money, and 25-delta put / call for the skew.
    """

    symbol: str
    ts: int
    call_volume: float
    put_volume: float
    atm_iv: float
    put_iv_25d: float
    call_iv_25d: float
    # open interest (contracts outstanding, a level, not since the last snapshot); NaN when unknown
    call_oi: float = float("nan")
    put_oi: float = float("nan")
    gamma_exposure: float = float("nan")  # dealer gamma, $ of delta per 1% move (altdata/options_flow.py)
    unusual: float = float("nan")  # 1.0 unusual activity (volume/OI or volume-baseline spike), 0.0 none


@dataclass(frozen=True, slots=True)
class InsiderFiling:
    """One Form 4 filing's open-market insider trades in one symbol (altdata/form4.py).

    ``ts`` is when EDGAR published the filing, never the earlier trade date: the trades are
    unknown to the market until then. A filing with ``owner == ""`` only says the source now
    covers the symbol (no trades: the features read 0, not NaN).
    """

    symbol: str
    ts: int
    owner: str  # reporting owner's CIK (or name)
    net_shares: float  # open-market shares bought - sold
    net_value: float  # open-market dollars bought - sold


@dataclass(slots=True)
class IntrabarFlow:
    """Quote and trade activity inside one bar interval, arrays indexed like the batch.

    ``ofi`` is the Cont-Kukanov-Stoikov order-flow imbalance summed over the interval's
    quote updates; ``bid_size``/``ask_size`` the depth at the interval end; ``buy_volume``/
    ``sell_volume`` the trade volume signed by the tick rule. NaN where unknown.
    """

    ofi: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    buy_volume: np.ndarray
    sell_volume: np.ndarray


@dataclass(slots=True)
class BarBatch:
    """One bar interval across the whole universe, as arrays indexed by symbol.

    ``valid[i]`` is False when symbol i did not report in this interval (stale);
    its OHLCV entries are then NaN and must not be fed to features.
    ``bid``/``ask`` are the quote at the end of the interval (NaN when unknown).
    ``refs`` holds the reference series' closes (index, volatility index ...), not tradable; in a
    Monte Carlo lockstep batch (several paths as the books of one engine, algobotd/book.py) each
    is a list with one close per book.
    ``news`` holds news items published during the interval.
    """

    ts: int
    symbols: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    valid: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    refs: dict[str, float] = field(default_factory=dict)
    news: list[News] = field(default_factory=list)
    flow: IntrabarFlow | None = None  # intrabar quote/trade summary, when the feed has one
    options: list[OptionsSnapshot] = field(default_factory=list)  # option-chain snapshots in the interval
    # alternative-data groups ("news", "options", "insider") whose source is failing: NaN features
    stale_sources: frozenset[str] = field(default_factory=frozenset)
    insider: list[InsiderFiling] = field(default_factory=list)  # Form 4 filings published in the interval

    def __len__(self) -> int:
        return len(self.symbols)

    def bars(self) -> list[Bar]:
        """Per-symbol records of the valid entries (for storage and tests, not the hot path)."""
        return [
            Bar(s, self.ts, float(self.open[i]), float(self.high[i]), float(self.low[i]),
                float(self.close[i]), float(self.volume[i]))
            for i, s in enumerate(self.symbols)
            if self.valid[i]
        ]


@dataclass(frozen=True, slots=True)
class OrderRequest:
    client_order_id: str
    symbol: str
    side: Side
    qty: int
    type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    tif: TimeInForce = TimeInForce.DAY
    reason: str = ""  # why the engine wants it: "signal", "stop", "flatten" ...
    created_ts: int = 0


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    client_order_id: str
    ts: int
    status: OrderStatus
    filled_qty: int = 0  # cumulative
    avg_fill_price: float = 0.0
    broker_order_id: str = ""
    reason: str = ""  # reject / cancel reason


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of one of our orders."""

    exec_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: int
    price: float
    commission: float
    ts: int

    @property
    def signed_qty(self) -> int:
        return self.qty * self.side.sign

    @property
    def cash_delta(self) -> float:
        """Cash change caused by this fill, commission included."""
        return -self.signed_qty * self.price - self.commission


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    qty: int
    avg_cost: float
    last_price: float
    realized_pnl: float = 0.0

    @property
    def market_value(self) -> float:
        return self.qty * self.last_price

    @property
    def unrealized_pnl(self) -> float:
        return self.qty * (self.last_price - self.avg_cost)


@dataclass(frozen=True, slots=True)
class Account:
    ts: int
    cash: float
    equity: float
    gross_exposure: float
    net_exposure: float
    realized_pnl: float
    unrealized_pnl: float
    commissions: float
    high_water_mark: float
    drawdown: float  # fraction below the high-water mark, >= 0


@dataclass(frozen=True, slots=True)
class TradingStateChange:
    state: TradingState
    reason: str
    actor: str  # "operator:<uid>", "breaker:<name>", "startup"
    ts: int
