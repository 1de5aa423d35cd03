"""Records shared by the risk modules: a denial with its reason code, and the one error type."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class DenyCode(enum.StrEnum):
    """Why a pre-trade check refused an order (stored with the order and in ``risk_events``)."""

    BAD_QTY = "bad_qty"
    UNKNOWN_SYMBOL = "unknown_symbol"
    NOT_TRADABLE = "not_tradable"
    STATE_HALTED = "state_halted"
    STATE_REDUCING = "state_reducing"
    SHORT_NOT_ALLOWED = "short_not_allowed"
    NO_PRICE = "no_price"
    MAX_ORDER_VALUE = "max_order_value"
    MAX_POSITION = "max_position"
    MAX_GROSS = "max_gross"
    RATE_LIMIT = "rate_limit"
    PRICE_BAND = "price_band"
    STALE_QUOTE = "stale_quote"
    DUPLICATE_ID = "duplicate_id"


@dataclass(frozen=True, slots=True)
class Denial:
    client_order_id: str
    symbol: str
    signed_qty: int
    code: DenyCode
    message: str

    @property
    def text(self) -> str:
        return f"{self.code.value}: {self.message}"


class RiskError(Exception):
    """Misuse of the risk layer (bad arrays, bad arguments); ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message
