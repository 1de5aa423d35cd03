"""Cash, positions, average cost, realized/unrealized P&L, equity and high-water mark.

State lives in numpy arrays aligned with the shared :class:`SymbolIndex` so that marking
500 symbols per bar batch is a couple of vectorised operations, not a Python loop.

Accounting model (average cost):
- increasing a position (or opening one) blends the fill price into ``avg_cost``;
- reducing it realizes ``closed_qty × (price − avg_cost) × sign(position)`` and keeps
  ``avg_cost``;
- flipping through zero realizes the closed part at the old cost and starts the new side
  at the fill price; a flat position has ``avg_cost == 0``.
Realized P&L excludes commissions, which are totalled separately, so that
``equity − initial_cash == realized + unrealized − commissions`` holds at all times.

Fills are applied at most once (keyed by ``exec_id``): brokers may redeliver executions
after a reconnect and the store replays the trades table at start-up.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from algobotd.domain import Account, Fill, Position
from algobotd.symbols import SymbolIndex


class Portfolio:
    def __init__(self, initial_cash: float, symbols: SymbolIndex, of: Portfolio | None = None, start: int = 0) -> None:
        """``of``: this portfolio is one book of ``of`` (Monte Carlo paths in lockstep): its arrays
        are views of ``of``'s from ``start`` on, so marking ``of`` marks every book at once; cash,
        P&L and the high-water mark are the book's own. Call :meth:`prices_changed` after."""
        self.initial_cash = float(initial_cash)
        self.symbols = symbols
        n = len(symbols)
        if of is None:
            self.qty = np.zeros(n, dtype=np.int64)
            self.avg_cost = np.zeros(n, dtype=np.float64)
            self.last = np.full(n, np.nan, dtype=np.float64)
            self.realized = np.zeros(n, dtype=np.float64)
        else:
            book = slice(start, start + n)
            self.qty, self.avg_cost, self.last, self.realized = (of.qty[book], of.avg_cost[book], of.last[book],
                                                                 of.realized[book])
        self._cash = self.initial_cash
        # valuation cache: equity and exposures are read many times per batch (risk, sizing,
        # status) but only change when a price is marked or a fill is booked
        self._valued: tuple[float, float, float, float] | None = None
        # sum(qty * avg_cost) changes only when a fill is booked, not when a price is marked;
        # np.dot also lets go of the GIL, so calling it per bar hands the core to the store
        # writer thread mid-batch (measured ~120 us a call on the backtest)
        self._cost_basis: float | None = None
        self._commissions = 0.0
        self._seen_exec_ids: set[str] = set()
        self._hwm = self.initial_cash
        self._drawdown = 0.0

    # --- array maintenance ------------------------------------------------------------------

    def _ensure_size(self) -> None:
        """Grow the arrays when the shared SymbolIndex gained symbols (rare, never shrinks)."""
        n, have = len(self.symbols), len(self.qty)
        if n <= have:
            return
        extra = n - have
        self.qty = np.concatenate([self.qty, np.zeros(extra, dtype=np.int64)])
        self.avg_cost = np.concatenate([self.avg_cost, np.zeros(extra)])
        self.last = np.concatenate([self.last, np.full(extra, np.nan)])
        self.realized = np.concatenate([self.realized, np.zeros(extra)])
        self._cost_basis = None

    # --- events -------------------------------------------------------------------------------

    def apply_fill(self, fill: Fill) -> bool:
        """Book one execution; False (and no change) when ``exec_id`` was already booked."""
        exec_id = fill.exec_id
        if exec_id in self._seen_exec_ids:
            return False
        _check_fill(fill)
        i = self.symbols.add(fill.symbol)  # restore may meet symbols the feed has not added yet
        self._ensure_size()
        self._seen_exec_ids.add(exec_id)
        self._book(i, fill.signed_qty, float(fill.price))
        self._cash += fill.cash_delta
        self._valued = None
        self._commissions += float(fill.commission)
        if math.isnan(self.last[i]):
            self.last[i] = fill.price
        return True

    def _book(self, i: int, delta: int, price: float) -> None:
        """Average-cost update of symbol ``i`` for a signed quantity change ``delta``."""
        # Python scalars, not numpy ones: the same IEEE arithmetic at a fraction of the cost per fill
        avg_cost = self.avg_cost
        q0 = int(self.qty[i])
        q1 = q0 + delta
        if q0 == 0 or (q0 > 0) == (delta > 0):  # opening or increasing
            avg_cost[i] = (q0 * float(avg_cost[i]) + delta * price) / q1
        else:  # reducing, closing or flipping
            closed = min(abs(delta), abs(q0))
            direction = 1 if q0 > 0 else -1
            self.realized[i] = float(self.realized[i]) + closed * (price - float(avg_cost[i])) * direction
            if q1 == 0:
                avg_cost[i] = 0.0
            elif (q1 > 0) != (q0 > 0):  # flipped: the remainder is a new position at this price
                avg_cost[i] = price
        self.qty[i] = q1
        self._cost_basis = None

    def restore(self, fills: Iterable[Fill]) -> int:
        """Replay stored executions at start-up; returns how many were new."""
        return sum(1 for f in fills if self.apply_fill(f))

    def mark(self, prices: np.ndarray, mask: np.ndarray | None = None) -> None:
        """Update last prices from an array aligned with the SymbolIndex (hot path).

        NaN, non-positive and masked-out entries keep their previous last price. ``prices``
        may be shorter than the index (symbols added after the batch was built).
        """
        self._ensure_size()
        n = len(prices)
        if n > len(self.last):
            raise ValueError(f"prices has {n} entries, the symbol index only {len(self.last)}")
        ok = prices > 0  # False for NaN too, so one comparison covers both
        if mask is not None:
            ok &= mask
        np.copyto(self.last[:n], prices, where=ok)
        self._valued = None

    def prices_changed(self) -> None:
        """The ``last`` array was marked through the portfolio this book is a view of."""
        self._valued = None

    def mark_symbol(self, symbol: str, price: float) -> None:
        if not (price > 0):
            return
        i = self.symbols.add(symbol)
        self._ensure_size()
        self.last[i] = price
        self._valued = None

    def raise_hwm(self, value: float) -> None:
        """Restore a high-water mark reached before a restart (it never goes down)."""
        self._hwm = max(self._hwm, value)
        self.update_hwm()

    def apply_cash_flow(self, amount: float) -> None:
        """Cash that moved without a fill (deposit +, withdrawal −, fee; algobotd/brokers/account.py).

        It is no P&L: ``initial_cash`` and the high-water mark move with it, so the identity
        above still holds, a withdrawal is no drawdown and a deposit no gain."""
        if not math.isfinite(amount):
            raise ValueError(f"cash flow must be finite, got {amount!r}")
        self._cash += amount
        self.initial_cash += amount
        self._hwm = max(0.0, self._hwm + amount)
        self._valued = None

    def reset_hwm(self, value: float) -> None:
        """Start the high-water mark afresh (books adopted from a venue account start at its equity)."""
        self._hwm = float(value)
        self.update_hwm()

    def update_hwm(self, equity: float | None = None) -> float:
        """Raise the high-water mark and recompute drawdown (call after marking); returns it."""
        eq = self.equity if equity is None else equity
        if eq > self._hwm:
            self._hwm = eq
        self._drawdown = max(0.0, (self._hwm - eq) / self._hwm) if self._hwm > 0 else 0.0
        return self._drawdown

    # --- valuation ------------------------------------------------------------------------------

    def _marks(self) -> np.ndarray:
        """Last prices, with the average cost standing in where no price is known yet."""
        return np.where(np.isnan(self.last), self.avg_cost, self.last)

    def valuation(self) -> tuple[float, float, float, float]:
        """(equity, gross exposure, net exposure, unrealized P&L) from one pass over the marks.

        The engine calls this once per batch instead of four properties that each re-mark.
        """
        if self._valued is None:
            marks = self._marks()
            value = self.qty * marks
            # np.add.reduce is what .sum() runs, without the Python-level wrapper (called per fill)
            net = float(np.add.reduce(value))
            gross = float(np.add.reduce(np.abs(value)))
            if self._cost_basis is None:
                self._cost_basis = float(np.dot(self.qty, self.avg_cost))
            unrealized = net - self._cost_basis
            self._valued = (self._cash + net, gross, net, unrealized)
        return self._valued

    def value_books(self, books: list[Portfolio], size: int) -> None:
        """Value every book of this portfolio at once (lockstep; ``size`` symbols per book): each
        book's :meth:`valuation` then returns the numbers it would compute alone -- a row-wise
        ``np.add.reduce`` adds a row exactly as the 1-D reduce adds that book's slice."""
        value = (self.qty * self._marks()).reshape(-1, size)
        nets = np.add.reduce(value, axis=1).tolist()
        grosses = np.add.reduce(np.abs(value), axis=1).tolist()
        for pf, net, gross in zip(books, nets, grosses):
            if pf._cost_basis is None:
                pf._cost_basis = float(np.dot(pf.qty, pf.avg_cost))
            pf._valued = (pf._cash + net, gross, net, net - pf._cost_basis)

    @property
    def cash(self) -> float:
        return self._cash

    @property
    def market_value(self) -> float:
        return self.valuation()[2]

    @property
    def equity(self) -> float:
        return self.valuation()[0]

    @property
    def gross_exposure(self) -> float:
        return self.valuation()[1]

    @property
    def net_exposure(self) -> float:
        return self.market_value

    @property
    def realized_pnl(self) -> float:
        return float(self.realized.sum())

    @property
    def unrealized_pnl(self) -> float:
        return self.valuation()[3]

    @property
    def commissions(self) -> float:
        return self._commissions

    @property
    def high_water_mark(self) -> float:
        return self._hwm

    @property
    def drawdown(self) -> float:
        """Fraction below the high-water mark as of the last :meth:`update_hwm`."""
        return self._drawdown

    # --- records ----------------------------------------------------------------------------

    def account(self, ts: int) -> Account:
        return Account(
            ts=ts,
            cash=self._cash,
            equity=self.equity,
            gross_exposure=self.gross_exposure,
            net_exposure=self.net_exposure,
            realized_pnl=self.realized_pnl,
            unrealized_pnl=self.unrealized_pnl,
            commissions=self._commissions,
            high_water_mark=self._hwm,
            drawdown=self._drawdown,
        )

    def _position_at(self, i: int, symbol: str) -> Position:
        last = self.last[i]
        return Position(
            symbol=symbol,
            qty=int(self.qty[i]),
            avg_cost=float(self.avg_cost[i]),
            last_price=float(self.avg_cost[i] if math.isnan(last) else last),
            realized_pnl=float(self.realized[i]),
        )

    def positions(self) -> list[Position]:
        """Open (non-zero) positions in SymbolIndex order."""
        names = self.symbols.symbols
        return [self._position_at(int(i), names[i]) for i in np.flatnonzero(self.qty)]

    def position(self, symbol: str) -> Position | None:
        i = self.symbols.get(symbol)
        if i is None or i >= len(self.qty) or self.qty[i] == 0:
            return None
        return self._position_at(i, symbol)


def _check_fill(fill: Fill) -> None:
    """Refuse executions that would corrupt the books (better loud than a wrong equity)."""
    qty = fill.qty
    # a positive plain int (every fill a broker makes) skips the general checks
    if not (type(qty) is int and qty > 0) and (isinstance(qty, bool) or int(qty) != qty or qty <= 0):
        raise ValueError(f"fill {fill.exec_id}: qty must be a positive integer, got {fill.qty!r}")
    if not (math.isfinite(fill.price) and fill.price > 0):
        raise ValueError(f"fill {fill.exec_id}: price must be finite and > 0, got {fill.price!r}")
    if not (math.isfinite(fill.commission) and fill.commission >= 0):
        raise ValueError(f"fill {fill.exec_id}: commission must be finite and >= 0, got {fill.commission!r}")
