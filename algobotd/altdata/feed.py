"""``AltDataFeed``: any market-data feed plus the alternative-data sources, as one ``Feed``.

It wraps the configured feed (sim, replay, Alpaca, IB) so alternative events ride the bar
batches the engine already consumes: no second path into the features, and the same code in
live runs, backtests and replays. Sources run as tasks on the daemon loop, each supervised:
an exception is logged once, marks the source down (its feature group goes NaN through
``BarBatch.stale_sources``) and the task is restarted after a back-off; trading never stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import structlog

from algobotd.altdata.hub import AltHub
from algobotd.domain import NS_PER_SECOND, BarBatch
from algobotd.feeds.base import Feed, ResumePoint

log = structlog.get_logger(__name__)


class Source(Protocol):
    """An alternative-data source; every method must be safe to call on a source that failed."""

    async def warm(self, start_ns: int, end_ns: int) -> int: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class AltDataFeed:
    def __init__(self, inner: Feed, hub: AltHub, sources: list[Source] | None = None,
                 loops: list[tuple[str, Callable[[], Awaitable[None]]]] | None = None,
                 retry_seconds: float = 30.0) -> None:
        self.inner, self.hub = inner, hub
        self.sources = list(sources or [])
        self.loops = list(loops or [])  # (source name, coroutine factory) run forever under supervision
        self.symbols = inner.symbols
        self.bar_seconds = inner.bar_seconds
        self.bar_ns = inner.bar_seconds * NS_PER_SECOND
        self.retry_seconds = retry_seconds
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    def __getattr__(self, name: str) -> Any:
        # feed-specific extras (barclock, last_trade, reconnects ...) stay reachable for status views
        return getattr(self.inner, name)

    @property
    def connected(self) -> bool:
        return self.inner.connected

    # the daemon sets this on live feeds (quotes between bars): it must land on the inner feed
    @property
    def price_listener(self) -> Any:
        return self.inner.price_listener  # type: ignore[attr-defined]  # AttributeError: not a live feed

    @price_listener.setter
    def price_listener(self, listener: Any) -> None:
        self.inner.price_listener = listener  # type: ignore[attr-defined]

    async def _supervise(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if name in self.hub.sources:
                    self.hub.mark_failed(name, f"{type(exc).__name__}: {exc}")
                else:
                    log.warning("alt-data task failed", source=name, error=repr(exc))
            await asyncio.sleep(self.retry_seconds)

    async def _start_sources(self) -> None:
        if self._started:
            return
        self._started = True
        for s in self.sources:
            try:
                await s.start()
            except Exception as exc:  # a source that cannot start is down, the market feed is not
                log.warning("alt-data source did not start", source=type(s).__name__, error=repr(exc))
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._supervise(n, f), name=f"altdata-{n}") for n, f in self.loops]

    async def history(self, n_bars: int, resume: ResumePoint | None) -> list[BarBatch]:
        batches = await self.inner.history(n_bars, resume)
        if batches:
            await self._start_sources()  # live first: nothing falls between warm-up and the stream
            start, end = batches[0].ts, batches[-1].ts + self.bar_ns
            for s in self.sources:
                try:
                    await s.warm(start, end)
                except Exception as exc:
                    log.warning("alt-data warm-up failed", source=type(s).__name__, error=repr(exc))
            for b in batches:
                self.hub.attach(b, self.bar_ns)
        return batches

    async def batches(self, resume: ResumePoint | None) -> AsyncIterator[BarBatch]:
        await self._start_sources()
        async for b in self.inner.batches(resume):
            yield self.hub.attach(b, self.bar_ns)

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for s in self.sources:
            try:
                await s.close()
            except Exception:
                log.exception("alt-data source close failed")
        await self.inner.close()
