"""One book: an account's own cash and P&L, trading-state latch, breakers, pre-trade limits and
day baseline, over a contiguous block of the engine's symbol index.

A live or backtest engine has exactly one book over the whole (growing) index. A Monte Carlo
engine runs many paths in lockstep as one book per path: every per-symbol step (marking,
volatility, stops, signals, fills) runs once over all paths' symbols, and each book is
checked, sized and latched as if its path ran alone (tests/validate/test_lockstep.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from algobotd.domain import TradingState, TradingStateChange
from algobotd.portfolio import Portfolio
from algobotd.risk.breakers import Breakers
from algobotd.risk.pretrade import PreTrade
from algobotd.risk.state import TradingStateMachine


@dataclass(slots=True, eq=False)
class BookState:
    index: int
    start: int  # first symbol of the book in the engine's index
    stop: int | None  # one past its last symbol; None: the rest of the index (a single book)
    portfolio: Portfolio
    state: TradingStateMachine
    breakers: Breakers
    pretrade: PreTrade
    day: int | None = None
    day_start_equity: float = 0.0
    fills: int = 0
    traded_value: float = 0.0
    breaker_trips: int = 0  # tripped readings recorded (``risk_events`` rows of kind "breaker")
    halts: int = 0  # changes to HALTED / REDUCING (``trading_state`` rows)
    reductions: int = 0

    def count_change(self, change: TradingStateChange) -> None:
        if change.state is TradingState.HALTED:
            self.halts += 1
        elif change.state is TradingState.REDUCING:
            self.reductions += 1
