"""The interface the control server needs from the running daemon.

The engine implements it; the control server (and tests with a real engine) call it.
Read methods return plain JSON-able data. State-changing methods take the ``actor``
(e.g. ``"operator:uid=1000"``) for the audit trail and return a JSON-able result or raise
``ControlError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

TOPICS = ("status", "positions", "orders", "predictions", "risk", "equity", "events")

ChangeListener = Callable[[str], None]  # called with a topic name when it changed


class ControlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ControlTarget(Protocol):
    def status(self) -> dict[str, Any]:
        """At least: mode, trading_state, trading_state_reason, equity, cash, day_pnl, drawdown,
        positions (count), open_orders (count), last_bar_ts (ISO string or None),
        feed_connected, broker_connected, model_id."""

    def positions(self) -> list[dict[str, Any]]:
        """symbol, qty, avg_cost, last, market_value, unrealized_pnl, soft_stop, hard_stop."""

    def orders(self) -> list[dict[str, Any]]:
        """Open orders: client_order_id, symbol, side, qty, filled_qty, type, limit_price, status, ts."""

    def predictions(self) -> list[dict[str, Any]]:
        """Latest per symbol: symbol, prediction, confidence, weights (dict model -> weight)."""

    def risk(self) -> dict[str, Any]:
        """trading_state, reason, since, by, breakers: list of {name, value, threshold, tripped}."""

    def equity_curve(self, limit: int = 2000) -> list[dict[str, Any]]:
        """Oldest first: ts (ISO), equity, cash, drawdown."""

    def events(self, limit: int = 200) -> list[dict[str, Any]]:
        """Newest last: ts (ISO), kind (fill, denial, breaker, state, reconnect, ...), message."""

    async def halt(self, reason: str, actor: str) -> dict[str, Any]: ...

    async def reduce(self, reason: str, actor: str) -> dict[str, Any]: ...

    async def resume(self, actor: str) -> dict[str, Any]: ...

    async def flatten(self, actor: str) -> dict[str, Any]: ...

    async def cancel_all(self, actor: str) -> dict[str, Any]: ...

    async def retrain(self, actor: str) -> dict[str, Any]: ...

    async def ingest(self, lines: list[Any], actor: str) -> dict[str, Any]:
        """Social JSON lines (algobotd/altdata/social.py): accepted / duplicates / rejected counts."""

    def add_change_listener(self, listener: ChangeListener) -> None:
        """The engine calls every listener with a topic name whenever that topic changed
        (synchronously, on the event loop; listeners must not block)."""

    def remove_change_listener(self, listener: ChangeListener) -> None: ...


# Optional extras ``status()`` may add (the dashboard shows them when present; see
# ``algobotd.control.protocol.Status``); any other extra key is dropped by the server:
STATUS_OPTIONAL_FIELDS = (
    "day_pnl_pct",  # fraction of the day's starting equity
    "drawdown_limit",  # fraction at which the drawdown breaker trips
    "gross_exposure",
    "net_exposure",
    "feed_lag_s",  # engine clock minus the last bar's close: right under a SimClock too
    "bar_seconds",
    "trading_state_since",  # ISO time of the last state change
    "trading_state_by",  # its actor: "operator:uid=1000", "breaker:drawdown", "startup"
)
# Conventions for every read method: timestamps ("ts", "since", "last_bar_ts") are ISO-8601
# strings in UTC; numbers are plain int/float (not numpy scalars: the server validates each
# result against the protocol and answers ``internal_error`` on a mismatch).
