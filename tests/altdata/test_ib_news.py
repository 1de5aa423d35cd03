"""IB news (historical + news ticks) against the fake TWS through the real ib_async client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from algobotd.altdata.hub import AltHub
from algobotd.altdata.ib_news import IBNews, clean
from algobotd.altdata.sentiment import LexiconScorer
from algobotd.config import FeedConfig, IBConfig
from algobotd.feeds.ib import IBFeed
from tests.brokers.ib_fake import FakeTWS

pytestmark = pytest.mark.timeout(60)
NS = 1_000_000_000


@pytest.fixture
async def tws() -> AsyncIterator[FakeTWS]:
    fake = await FakeTWS().start()
    yield fake
    await fake.stop()


def make_feed(port: int) -> IBFeed:
    return IBFeed(FeedConfig(kind="ib", symbols=["AAPL", "MSFT"], bar_seconds=60),
                  IBConfig(port=port, client_id=17, timeout_seconds=2.0, reconnect_initial_seconds=0.05,
                           reconnect_max_seconds=0.1))


def test_metadata_prefix_stripped() -> None:
    assert clean("{A:800015:L:en:K:0.97:C:0.91}Apple beats estimates") == "Apple beats estimates"


async def test_history_and_live_ticks(tws: FakeTWS) -> None:
    feed = make_feed(tws.port)
    hub = AltHub(LexiconScorer())
    src = IBNews(hub, feed, "BRFG+DJNL")
    aapl = tws._con_id("AAPL")
    tws.news_history[aapl] = [("2024-05-01 14:30:00.0", "BRFG", "BRFG$1", "{A:1:L:en}Apple beats estimates"),
                              ("2024-05-01 14:31:00.0", "DJNL", "DJ$2", "Apple faces EU probe")]
    try:
        t0 = 1_714_573_800 * NS
        assert await src.warm(t0 - 3600 * NS, t0 + 3600 * NS) == 2
        assert tws.news_requests[0][1] == "BRFG+DJNL" and {r[0] for r in tws.news_requests} == {aapl, tws._con_id("MSFT")}
        first, second = sorted(hub.pending_news, key=lambda n: n.ts)
        assert first.ts == t0 and first.headline == "Apple beats estimates" and first.sentiment > 0
        assert second.sentiment < 0 and second.id == "ib:DJNL:DJ$2" and second.symbols == ("AAPL",)
        await src.start()
        await asyncio.sleep(0.2)
        now_ms = int(time.time() * 1000)
        assert tws.push_news_tick("MSFT", now_ms, "BRFG", "BRFG$9", "Microsoft wins major cloud contract") == 1
        for _ in range(100):
            if len(hub.pending_news) == 3:
                break
            await asyncio.sleep(0.02)
        live = hub.pending_news[-1]
        assert live.symbols == ("MSFT",) and live.ts == now_ms * 1_000_000 and live.sentiment > 0
        assert len(feed.ib.wrapper.newsTicks) == 1  # ib_async's own handler still ran
        await src.close()
        assert feed.ib.wrapper.tickNews.__func__ is type(feed.ib.wrapper).tickNews
    finally:
        await feed.close()


async def test_no_subscription_marks_source_down(tws: FakeTWS) -> None:
    tws.news_error = 10276
    feed = make_feed(tws.port)
    hub = AltHub(LexiconScorer())
    try:
        assert await IBNews(hub, feed, "BRFG").warm(0, 3600 * NS) == 0
        st = hub.status(0)["sources"]["ib_news"]
        assert st["ok"] is False and st["last_error"]
    finally:
        await feed.close()


async def test_news_ticks_resubscribed_after_reconnect(tws: FakeTWS) -> None:
    feed = IBFeed(FeedConfig(kind="ib", symbols=["AAPL"], bar_seconds=60),
                  IBConfig(port=tws.port, client_id=17, timeout_seconds=2.0, reconnect_initial_seconds=0.05,
                           reconnect_max_seconds=0.1))
    hub = AltHub(LexiconScorer())
    src = IBNews(hub, feed, "BRFG")
    try:
        await src.start()
        tws.drop_all()  # gateway restart: the requests are forgotten on both sides
        for _ in range(200):
            if feed.connected and any(c.news for c in tws.clients):
                break
            await asyncio.sleep(0.02)
        assert tws.push_news_tick("AAPL", int(time.time() * 1000), "BRFG", "BRFG$3", "Apple wins award") == 1
        for _ in range(100):
            if hub.pending_news:
                break
            await asyncio.sleep(0.02)
        assert [n.id for n in hub.pending_news] == ["ib:BRFG:BRFG$3"]
    finally:
        await src.close()
        await feed.close()
