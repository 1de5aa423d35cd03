"""What the engine needs from a broker (paper, Alpaca, IB).

Brokers report order updates and fills by calling the sink the engine installs with
``set_sink``; the call is synchronous and happens on the event loop, so the engine sees
events in the order the venue produced them. A broker never mutates the portfolio itself.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Protocol

from algobotd.domain import BarBatch, Fill, OrderRequest, OrderUpdate

BrokerEvent = OrderUpdate | Fill
EventSink = Callable[[BrokerEvent], None]


class BrokerError(Exception):
    """Any broker failure; ``code`` is machine-readable (e.g. "disconnected", "rejected")."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message


def backoff_seconds(attempt: int, initial: float, maximum: float) -> float:
    """Exponential backoff with jitter: uniform(cap / 2, cap), cap = min(maximum, initial * 2**attempt).

    The jitter spreads the reconnects of several daemons behind one venue restart; the lower
    half bound keeps a retry loop from hammering the venue at 0 s."""
    cap = min(maximum, initial * (2 ** min(attempt, 30)))
    return random.uniform(0.5 * cap, cap)


class Broker(Protocol):
    name: str

    @property
    def connected(self) -> bool: ...

    def set_sink(self, sink: EventSink) -> None: ...

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def submit(self, orders: list[OrderRequest]) -> None:
        """Send orders; acknowledgements/rejections arrive through the sink.

        Resubmitting a client order id the venue already knows must not create a second order.
        """

    async def cancel(self, client_order_id: str) -> None: ...

    async def cancel_all(self) -> None: ...

    def on_batch(self, batch: BarBatch) -> None:
        """Called with every new bar batch before the engine decides on it.

        The paper broker matches resting orders here (fills at this bar's open or later);
        real brokers ignore it.
        """
