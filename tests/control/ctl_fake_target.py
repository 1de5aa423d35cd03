"""An in-process ControlTarget for tests and the control benchmark.

A stand-in for the engine until the real one is wired in: it holds a trading state, cash,
positions, orders, predictions, breakers, an equity curve and an event log; its control methods
really change that state (with the engine's rules: only resume moves the state up; HALTED
cancels open orders) and notify change listeners exactly as the engine must. ``step()``
simulates one bar deterministically.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from algobotd.control.target import TOPICS, ControlError
from algobotd.domain import TradingState

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "JPM")


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


class FakeTarget:
    def __init__(self, seed: int = 7, *, bars: int = 60, mode: str = "paper") -> None:
        self.rng = random.Random(seed)
        self.mode = mode
        self.state = TradingState.ACTIVE
        self.reason = ""
        self.state_by = "startup"
        self.state_since = iso(T0)
        self.day_start_equity = 1_000_000.0
        self.hwm = 1_000_000.0
        self.bar = 0
        self.model_id = "ens-0001"
        self.feed_connected = True
        self.broker_connected = True
        self.prices = {s: 100.0 + 37.0 * i for i, s in enumerate(SYMBOLS)}
        self.book: dict[str, dict[str, Any]] = {}
        for i, s in enumerate(SYMBOLS[:5]):
            qty = (i + 1) * 100 * (-1 if i == 3 else 1)
            self.book[s] = {"qty": qty, "avg_cost": self.prices[s] * 0.99}
        # cash such that the book is worth exactly the day's starting equity
        self.cash = self.day_start_equity - sum(p["qty"] * self.prices[s] for s, p in self.book.items())
        self.open_orders: list[dict[str, Any]] = [
            {"client_order_id": f"c-{n:04d}", "symbol": s, "side": side, "qty": q, "filled_qty": 0,
             "type": "limit", "limit_price": self.prices[s], "status": "accepted", "ts": iso(T0)}
            for n, (s, side, q) in enumerate([("NVDA", "buy", 50), ("TSLA", "sell", 20), ("JPM", "buy", 75)])
        ]
        self.curve: deque[dict[str, Any]] = deque(maxlen=5000)
        self.log: deque[dict[str, Any]] = deque(maxlen=1000)
        self.listeners: list[Callable[[str], None]] = []
        self.control_calls: list[tuple[str, str]] = []  # (method, actor): the audit trail
        self._event("state", "started ACTIVE")
        for _ in range(bars):
            self.step(notify=False)

    # --- simulation -----------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return T0 + timedelta(minutes=self.bar)

    def equity(self) -> float:
        return self.cash + sum(p["qty"] * self.prices[s] for s, p in self.book.items())

    def step(self, notify: bool = True) -> None:
        """One bar: prices move, equity is marked, predictions refresh."""
        self.bar += 1
        for s in self.prices:
            self.prices[s] *= 1.0 + self.rng.gauss(0.0002, 0.004)
        eq = self.equity()
        self.hwm = max(self.hwm, eq)
        self.curve.append({"ts": iso(self.now), "equity": eq, "cash": self.cash, "drawdown": self.drawdown()})
        if notify:
            for topic in ("status", "positions", "predictions", "risk", "equity"):
                self.notify(topic)

    def drawdown(self) -> float:
        return max(0.0, 1.0 - self.equity() / self.hwm)

    def notify(self, topic: str) -> None:
        for listener in list(self.listeners):
            listener(topic)

    def _event(self, kind: str, message: str) -> None:
        self.log.append({"ts": iso(self.now), "kind": kind, "message": message})

    def _set_state(self, state: TradingState, reason: str, actor: str) -> None:
        self.state, self.reason, self.state_by, self.state_since = state, reason, actor, iso(self.now)
        self._event("state", f"{state.value} by {actor}: {reason}")
        for topic in ("status", "risk", "events"):
            self.notify(topic)

    # --- ControlTarget: reads -------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        eq = self.equity()
        gross = sum(abs(p["qty"]) * self.prices[s] for s, p in self.book.items())
        return {
            "mode": self.mode, "trading_state": self.state.value, "trading_state_reason": self.reason,
            "equity": eq, "cash": self.cash, "day_pnl": eq - self.day_start_equity,
            "drawdown": self.drawdown(), "positions": len(self.book), "open_orders": len(self.open_orders),
            "last_bar_ts": iso(self.now), "feed_connected": self.feed_connected,
            "broker_connected": self.broker_connected, "model_id": self.model_id,
            "day_pnl_pct": eq / self.day_start_equity - 1.0, "drawdown_limit": 0.05,
            "gross_exposure": gross, "feed_lag_s": 0.8, "bar_seconds": 60,
            "trading_state_since": self.state_since, "trading_state_by": self.state_by,
        }

    def positions(self) -> list[dict[str, Any]]:
        out = []
        for s, p in sorted(self.book.items()):
            last, qty, avg = self.prices[s], p["qty"], p["avg_cost"]
            sign = 1 if qty > 0 else -1
            out.append({
                "symbol": s, "qty": qty, "avg_cost": avg, "last": last, "market_value": qty * last,
                "unrealized_pnl": qty * (last - avg), "soft_stop": avg * (1 - sign * 0.03),
                "hard_stop": avg * (1 - sign * 0.06),
            })
        return out

    def orders(self) -> list[dict[str, Any]]:
        return [dict(o) for o in self.open_orders]

    def predictions(self) -> list[dict[str, Any]]:
        out = []
        for i, s in enumerate(SYMBOLS):
            pred = ((self.bar * 7 + i * 13) % 21 - 10) / 1000.0
            out.append({"symbol": s, "prediction": pred, "confidence": 0.5 + (i % 5) / 10,
                        "weights": {"gbm": 0.5, "lstm": 0.3, "tcn": 0.2}})
        return out

    def risk(self) -> dict[str, Any]:
        dd = self.drawdown()
        day = self.equity() / self.day_start_equity - 1.0
        return {
            "trading_state": self.state.value, "reason": self.reason, "since": self.state_since, "by": self.state_by,
            "breakers": [
                {"name": "drawdown", "value": dd, "threshold": 0.05, "tripped": dd >= 0.05},
                {"name": "daily_loss", "value": -day, "threshold": 0.02, "tripped": -day >= 0.02},
                {"name": "reject_rate", "value": 0.0, "threshold": 0.2, "tripped": False},
                {"name": "feed_stale", "value": 0.8, "threshold": 180.0, "tripped": False},
            ],
        }

    def equity_curve(self, limit: int = 2000) -> list[dict[str, Any]]:
        return list(self.curve)[-limit:]

    def events(self, limit: int = 200) -> list[dict[str, Any]]:
        return list(self.log)[-limit:]

    # --- ControlTarget: control -----------------------------------------------------------

    async def halt(self, reason: str, actor: str) -> dict[str, Any]:
        await asyncio.sleep(0)  # the engine awaits its broker here
        self.control_calls.append(("halt", actor))
        cancelled = len(self.open_orders)
        self.open_orders.clear()
        self._set_state(TradingState.HALTED, reason, actor)
        self.notify("orders")
        return {"trading_state": self.state.value, "reason": reason, "cancelled_orders": cancelled}

    async def reduce(self, reason: str, actor: str) -> dict[str, Any]:
        self.control_calls.append(("reduce", actor))
        if self.state.severity > TradingState.REDUCING.severity:
            raise ControlError("invalid_transition", f"trading is {self.state.value}; only resume moves it up")
        self._set_state(TradingState.REDUCING, reason, actor)
        return {"trading_state": self.state.value, "reason": reason}

    async def resume(self, actor: str) -> dict[str, Any]:
        self.control_calls.append(("resume", actor))
        self._set_state(TradingState.ACTIVE, "operator resume", actor)
        return {"trading_state": self.state.value}

    async def flatten(self, actor: str) -> dict[str, Any]:
        self.control_calls.append(("flatten", actor))
        closed = len(self.book)
        for s, p in self.book.items():
            self.cash += p["qty"] * self.prices[s]
        self.book.clear()
        self._event("flatten", f"{closed} positions closed by {actor}")
        for topic in ("positions", "status", "events", "equity"):
            self.notify(topic)
        return {"closed_positions": closed}

    async def cancel_all(self, actor: str) -> dict[str, Any]:
        self.control_calls.append(("cancel_all", actor))
        n = len(self.open_orders)
        self.open_orders.clear()
        self._event("cancel", f"{n} orders cancelled by {actor}")
        for topic in ("orders", "status", "events"):
            self.notify(topic)
        return {"cancelled_orders": n}

    async def retrain(self, actor: str) -> dict[str, Any]:
        self.control_calls.append(("retrain", actor))
        n = int(self.model_id.split("-")[1]) + 1
        self.model_id = f"ens-{n:04d}"
        self._event("model", f"retrained: {self.model_id}")
        for topic in ("status", "events"):
            self.notify(topic)
        return {"model_id": self.model_id}

    # --- listeners ------------------------------------------------------------------------

    def add_change_listener(self, listener: Callable[[str], None]) -> None:
        self.listeners.append(listener)

    def remove_change_listener(self, listener: Callable[[str], None]) -> None:
        if listener in self.listeners:
            self.listeners.remove(listener)

    def fingerprint(self) -> tuple[Any, ...]:
        """Everything a control call could change (for 'state unchanged' assertions)."""
        return (self.state, self.reason, self.cash, tuple(sorted(self.book)), len(self.open_orders),
                self.model_id, len(self.control_calls))


assert set(TOPICS) >= {"status", "positions", "orders", "predictions", "risk", "equity", "events"}
