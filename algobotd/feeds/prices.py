"""Prices between bars (quotes, trades) for the stop checks, coalesced per symbol.

Live feeds call the relay synchronously from their stream callbacks; a task on the daemon's
loop hands the latest price of each symbol to the engine. A burst of quotes for one symbol
costs one stop check, and a slow check never blocks the feed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

PriceHandler = Callable[[str, int, float | None, float | None, float | None], Awaitable[None]]


class PriceRelay:
    def __init__(self, handler: PriceHandler) -> None:
        self.handler = handler
        self._latest: dict[str, tuple[int, float | None, float | None, float | None]] = {}
        self._wake = asyncio.Event()
        self.received = 0
        self.delivered = 0

    def __call__(self, symbol: str, ts: int, price: float | None = None, bid: float | None = None,
                 ask: float | None = None) -> None:
        """Record the latest price of ``symbol`` (a trade ``price`` and/or a ``bid``/``ask``)."""
        self.received += 1
        self._latest[symbol] = (ts, price, bid, ask)
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            latest, self._latest = self._latest, {}
            for symbol, (ts, price, bid, ask) in latest.items():
                try:
                    await self.handler(symbol, ts, price, bid, ask)
                    self.delivered += 1
                except Exception:  # a bad tick must not end stop checking for every symbol
                    log.exception("price update failed", symbol=symbol)
