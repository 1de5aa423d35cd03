"""The trading-state latch: ACTIVE -> REDUCING -> HALTED.

Automatic transitions (breakers) only move the state down; only an operator ``resume``
moves it up. Every change is returned as a record so the caller can persist it (the
``trading_state`` table) before acting on it; a restarted daemon restores the latest row.
"""

from __future__ import annotations

from algobotd.domain import TradingState, TradingStateChange


class TradingStateMachine:
    def __init__(self, initial: TradingStateChange | None = None) -> None:
        self.current = initial or TradingStateChange(TradingState.ACTIVE, "start", "startup", 0)

    @property
    def state(self) -> TradingState:
        return self.current.state

    def escalate(self, state: TradingState, reason: str, actor: str, ts: int) -> TradingStateChange | None:
        """Move down to ``state`` (breakers and operator halt/reduce); never up. None if no change."""
        if state.severity <= self.state.severity:
            return None
        self.current = TradingStateChange(state, reason, actor, ts)
        return self.current

    def resume(self, actor: str, ts: int, reason: str = "operator resume") -> TradingStateChange | None:
        """The only way up: an operator command, straight back to ACTIVE."""
        if self.state is TradingState.ACTIVE:
            return None
        self.current = TradingStateChange(TradingState.ACTIVE, reason, actor, ts)
        return self.current

    def allows(self, position: int, signed_qty: int) -> bool:
        """May an order of ``signed_qty`` go out given the current ``position``?

        REDUCING: only orders that shrink |position| without flipping its sign.
        HALTED: nothing (operator flatten orders are checked separately as reduce-only).
        """
        if self.state is TradingState.ACTIVE:
            return True
        if self.state is TradingState.REDUCING:
            return is_reducing(position, signed_qty)
        return False


def is_reducing(position: int, signed_qty: int) -> bool:
    return position != 0 and signed_qty != 0 and (position > 0) != (signed_qty > 0) and abs(signed_qty) <= abs(position)
