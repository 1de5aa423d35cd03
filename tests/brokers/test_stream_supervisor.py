"""StreamSupervisor (algobotd/brokers/alpaca_common.py), the restart loop shared by the Alpaca
trading, data and news streams, driven with a minimal stream (the fake-server tests cover the
real alpaca-py streams): backoff grows while restarts fail, one stream at a time, clean close."""

from __future__ import annotations

import asyncio

import pytest

from algobotd.brokers import alpaca_common
from algobotd.brokers.alpaca_common import StreamSupervisor
from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(30)


class MiniStream:
    """What the supervisor uses of an alpaca-py stream: a run loop that ends when stopped."""

    def __init__(self) -> None:
        self.ended = asyncio.Event()
        self.closed = 0

    async def _run_forever(self) -> None:
        await self.ended.wait()

    async def stop_ws(self) -> None:
        self.ended.set()

    async def close(self) -> None:
        self.closed += 1


async def test_backoff_grows_while_restarts_fail_and_close_stops_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[int] = []

    def no_wait(attempt: int, initial: float, maximum: float) -> float:
        attempts.append(attempt)
        return 0.0

    monkeypatch.setattr(alpaca_common, "backoff_seconds", no_wait)
    streams: list[MiniStream] = []
    failures = [3]

    def make() -> MiniStream:
        if streams and failures[0] > 0:  # the first restarts fail (e.g. the stream cannot be built)
            failures[0] -= 1
            raise OSError("cannot build the stream")
        streams.append(MiniStream())
        return streams[-1]

    lost: list[int] = []
    sup = StreamSupervisor("test-stream", make, lambda: lost.append(1), (0.001, 0.002))
    sup.start()
    sup.supervise()
    await asyncio.sleep(0.05)  # it ran fine for longer than the backoff's cap: a fresh start
    streams[0].ended.set()  # the library's loop gave up
    await wait_for(lambda: sup.restarts == 1)
    assert attempts == [0, 1, 2, 3]  # each failed restart waits longer, not the first delay again
    assert lost == [1] and streams[0].closed == 1  # lost once, the dead stream's socket closed once
    assert len(streams) == 2 and sup.stream is streams[1] and sup.task is not None and not sup.task.done()
    await sup.close()
    assert sup.task.done() and streams[1].ended.is_set() and streams[1].closed == 1
    await asyncio.sleep(0.02)
    assert len(streams) == 2 and sup.restarts == 1  # nothing restarted after close
