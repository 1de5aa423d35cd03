"""Pacing for feeds that replay or synthesise bars faster (or slower) than the market.

``speed`` is the config value ``feed.sim.speed`` / ``feed.replay.speed``:

- ``"max"``: no sleeping, but every ``MAX_SPEED_YIELD`` batches yield to the event loop
  (``asyncio.sleep(0)``) so the control server, writer and watchdog keep running;
- ``"realtime"``: one batch per ``bar_seconds`` of wall time;
- a number ``x > 0``: one batch per ``bar_seconds / x`` seconds.

Batch ``k`` is due at ``start + k * interval`` on the event loop's monotonic clock.
Scheduling against that fixed origin (rather than ``sleep(interval)`` after the work)
means the time spent producing and consuming batches never accumulates as drift; a
consumer that falls behind gets the overdue batches back to back until it catches up.
"""

from __future__ import annotations

import asyncio


MAX_SPEED_YIELD = 16


def pace_interval(bar_seconds: float, speed: float | str) -> float | None:
    """Wall-clock seconds between batches, or None for "max" (no sleeping)."""
    if speed == "max":
        return None
    if speed == "realtime":
        return float(bar_seconds)
    if isinstance(speed, str):
        raise ValueError(f'speed must be "max", "realtime" or a number > 0, got {speed!r}')
    x = float(speed)
    if not x > 0:
        raise ValueError(f"speed must be > 0, got {speed!r}")
    return float(bar_seconds) / x


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Pacer:
    """Decides when the next batch may be handed out; see the module docstring."""

    def __init__(self, bar_seconds: float, speed: float | str) -> None:
        self.interval: float | None = pace_interval(bar_seconds, speed)
        self._origin: float | None = None  # loop time at which batch 0 was due
        self._count = 0  # batches released so far
        self._stopped = False
        self._waiter: asyncio.Future[None] | None = None

    @property
    def stopped(self) -> bool:
        return self._stopped

    def reset(self) -> None:
        """Forget the schedule: the next ``wait()`` is due immediately and starts a new origin."""
        self._origin = None
        self._count = 0

    def stop(self) -> None:
        """Wake a pending ``wait()`` at once (it returns False) and refuse further waits."""
        self._stopped = True
        if self._waiter is not None:
            _wake(self._waiter)

    async def wait(self) -> bool:
        """Sleep until the next batch is due. Returns False when the pacer was stopped."""
        if self._stopped:
            return False
        if self.interval is None:
            # a loop round trip per batch costs as much as a batch of engine work; every
            # MAX_SPEED_YIELD batches keeps the daemon responsive without that cost
            self._count += 1
            if self._count % MAX_SPEED_YIELD == 0:
                await asyncio.sleep(0)
            return not self._stopped
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._origin is None:
            self._origin = now
        due = self._origin + self._count * self.interval
        self._count += 1
        if due <= now:
            await asyncio.sleep(0)  # overdue: release at once, still yielding to the loop
            return not self._stopped
        # A bare future + call_at instead of wait_for(): no task per batch, and stop() can
        # resolve the same future to interrupt a long "realtime" sleep immediately.
        fut: asyncio.Future[None] = loop.create_future()
        handle = loop.call_at(due, _wake, fut)
        self._waiter = fut
        try:
            await fut
        finally:
            handle.cancel()
            self._waiter = None
        return not self._stopped
