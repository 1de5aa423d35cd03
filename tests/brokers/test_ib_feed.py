"""IBFeed warm-up and pacing against the fake TWS; HistoryPacer rules on a virtual clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from algobotd.brokers.base import BrokerError
from algobotd.config import ConfigError, FeedConfig, IBConfig
from algobotd.domain import NS_PER_SECOND
from algobotd.feeds.ib import HistoryPacer, IBFeed, history_duration
from tests.brokers.ib_fake import FakeTWS

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def tws() -> AsyncIterator[FakeTWS]:
    fake = await FakeTWS().start()
    yield fake
    await fake.stop()


def make_feed(port: int, bar_seconds: int = 60, symbols: tuple[str, ...] = ("AAPL", "MSFT"), **kw: object) -> IBFeed:
    ib = dict(port=port, client_id=17, timeout_seconds=2.0, history_timeout_seconds=0.5,
              reconnect_initial_seconds=0.05, reconnect_max_seconds=0.1)
    ib.update(kw)
    return IBFeed(FeedConfig(kind="ib", symbols=list(symbols), bar_seconds=bar_seconds), IBConfig(**ib))  # type: ignore[arg-type]


def minute_bars(n: int, end: int, base: float) -> list[tuple[int, float, float, float, float, float]]:
    start = end - n * 60
    return [(start + 60 * i, base + i, base + i + 1, base + i - 1, base + i + 0.5, 100 + i) for i in range(n)]


async def test_history_aligns_symbols_into_batches(tws: FakeTWS) -> None:
    now = int(time.time()) // 60 * 60  # the current minute is still forming: it must not appear
    tws.history = lambda sym, end, dur, size: (minute_bars(5, now + 60, 10.0) if sym == "AAPL"
                                               else minute_bars(4, now, 20.0))
    feed = make_feed(tws.port)
    try:
        batches = await feed.history(3, None)
        assert [b.ts for b in batches] == [(now - 180 + 60 * i) * NS_PER_SECOND for i in range(3)]
        last = batches[-1]
        assert last.valid.tolist() == [True, True]
        assert last.close.tolist() == [13.5, 23.5]
        req = tws.history_requests[0]
        assert (req[3], req[4]) == ("4 D", "1 min") and req[2] == ""  # days cover nights/weekends; end = now
        assert feed.session.client_id == 18 and feed.session.readonly  # its own read-only connection
    finally:
        await feed.close()


async def test_history_timeout_is_an_error_not_empty(tws: FakeTWS) -> None:
    tws.history = lambda *a: None  # the gateway never answers
    feed = make_feed(tws.port, symbols=("AAPL",))
    try:
        with pytest.raises(BrokerError) as err:
            await feed.history(10, None)
        assert err.value.code == "history_timeout"
    finally:
        await feed.close()


async def test_history_request_error_raises(tws: FakeTWS) -> None:
    tws.history = lambda *a: 162  # type: ignore[return-value]  # pacing violation from IB
    feed = make_feed(tws.port, symbols=("AAPL",))
    try:
        with pytest.raises(BrokerError) as err:
            await feed.history(10, None)
        assert err.value.code == "history_error" and "162" in err.value.message
    finally:
        await feed.close()


async def test_unknown_symbol_is_a_clear_error(tws: FakeTWS) -> None:
    tws.unknown_symbols.add("NOPE")
    feed = make_feed(tws.port, symbols=("AAPL", "NOPE"))
    try:
        with pytest.raises(BrokerError) as err:
            await feed.history(1, None)
        assert err.value.code == "unknown_symbol" and "NOPE" in err.value.message
    finally:
        await feed.close()


def test_config_checks() -> None:
    with pytest.raises(ConfigError) as err:
        make_feed(1, bar_seconds=7)
    assert err.value.path == "feed.bar_seconds"
    with pytest.raises(ConfigError) as err:
        make_feed(1, symbols=())
    assert err.value.path == "feed.symbols"


def test_history_duration() -> None:
    assert history_duration(120, 60, 60) == "4 D"
    assert history_duration(100, 5, 5) == "500 S"
    assert history_duration(10_000, 5, 5) == "3600 S"  # IB's cap for 5-second bars


async def test_pacer_rules_on_a_virtual_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]

    async def fake_sleep(s: float) -> None:
        now[0] += s

    monkeypatch.setattr("algobotd.feeds.ib.asyncio.sleep", fake_sleep)
    p = HistoryPacer(clock=lambda: now[0])
    await p.acquire("k", "AAPL")
    await p.acquire("k", "AAPL")  # identical request: waits 15 s
    assert now[0] == pytest.approx(15.0)
    sent = []
    for i in range(200):
        await p.acquire(("sym", i), f"S{i}")
        sent.append(now[0])
    everything = [0.0, 15.0, *sent]
    for i, t in enumerate(everything):  # never more than 60 in any 10-minute window
        assert sum(1 for u in everything[i:] if u - t < 600) <= 60
    assert everything[-1] < 3 * 600 + 15 + 1  # and not slower than needed
    for i in range(6):  # one contract: at most 5 per 2 seconds
        await p.acquire(("x", i), "SAME")
    assert p.waited > 0


async def test_1101_restored_data_lost_resubscribes(tws: FakeTWS) -> None:
    feed = make_feed(tws.port, bar_seconds=10, symbols=("AAPL",))
    gen = feed.batches(None)
    first = asyncio.ensure_future(gen.__anext__())
    try:
        end = time.monotonic() + 5
        while tws.subscribed() != {"AAPL"} and time.monotonic() < end:
            await asyncio.sleep(0.02)
        [client] = [c for c in tws.clients if c.bars]
        before = set(client.bars)
        tws.send_error(1100, "Connectivity between IB and Trader Workstation has been lost.")
        tws.send_error(1101, "Connectivity restored - data lost.")
        while set(client.bars) in (before, set()) and time.monotonic() < end:
            await asyncio.sleep(0.02)
        assert set(client.bars) and not set(client.bars) & before  # old requests cancelled, new ones made
        assert feed.connected and feed.session.disconnects == 1
        t0 = (int(time.time()) // 10 + 3) * 10
        tws.push_bar("AAPL", t0, 10, 11, 9, 10.5, 5)
        tws.push_bar("AAPL", t0 + 5, 10.5, 12, 10, 11, 5)
        batch = await asyncio.wait_for(first, 5)
        assert batch.ts == t0 * NS_PER_SECOND and batch.close[0] == 11 and batch.volume[0] == 10
    finally:
        first.cancel()
        await gen.aclose()
        await feed.close()
