"""``AltData``: the alternative-data sources' lifecycle around one :class:`AltHub`.

Events reach the features on the bar batches themselves: ``Engine.warm`` and
``Engine.process`` call ``hub.attach(batch)`` before the model sees the batch, so live runs,
warm-up, backtests and replays share one path and the market feed stays what it is.
Sources run as tasks on the daemon loop, each supervised: an exception is logged once, marks
the source down (its feature group goes NaN through ``BarBatch.stale_sources``) and the task
is restarted after ``altdata.retry_seconds``; trading never stops for a source.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

from algobotd.altdata.hub import AltHub
from algobotd.domain import BarBatch

log = structlog.get_logger(__name__)


class Source(Protocol):
    """An alternative-data source; every method must be safe to call on a source that failed."""

    async def warm(self, start_ns: int, end_ns: int) -> int: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class AltData:
    def __init__(self, hub: AltHub, sources: list[Source] | None = None,
                 loops: list[tuple[str, Callable[[], Awaitable[None]]]] | None = None,
                 retry_seconds: float = 30.0) -> None:
        self.hub = hub
        self.sources = list(sources or [])
        self.loops = list(loops or [])  # (source name, coroutine factory) run forever under supervision
        self.retry_seconds = retry_seconds
        self.social: Any = None  # the drop directory, when watched
        self.form4: Any = None  # the EDGAR fetcher, when altdata.form4 is on
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

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

    async def start(self) -> None:
        """Start live sources and pollers (idempotent); a source that cannot start is down, not fatal."""
        if self._started:
            return
        self._started = True
        for s in self.sources:
            try:
                await s.start()
            except Exception as exc:
                log.warning("alt-data source did not start", source=type(s).__name__, error=repr(exc))
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._supervise(n, f), name=f"altdata-{n}") for n, f in self.loops]

    async def warm(self, batches: list[BarBatch], bar_ns: int) -> None:
        """History for the warm-up window; live sources start first so nothing falls in between
        (the hub de-duplicates the overlap)."""
        await self.start()
        # no warm-up bars (feed.warmup_bars = 0): the sources' own history window ends now
        end = batches[-1].ts + bar_ns if batches else time.time_ns()
        start = batches[0].ts if batches else end
        for s in self.sources:
            try:
                await s.warm(start, end)
            except Exception as exc:
                log.warning("alt-data warm-up failed", source=type(s).__name__, error=repr(exc))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for s in self.sources:
            try:
                await s.close()
            except Exception:
                log.exception("alt-data source close failed")
