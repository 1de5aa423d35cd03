"""IB options flow against the fake TWS (real ib_async): option volume / open interest / IV ticks
on the underlying, reqSecDefOptParams, and the two-contract skew probe."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections.abc import AsyncIterator

import pytest

from algobotd.altdata.hub import AltHub
from algobotd.altdata.ib_options import IBOptions
from algobotd.altdata.sentiment import LexiconScorer
from algobotd.config import FeedConfig, IBConfig
from algobotd.feeds.ib import IBFeed
from tests.brokers.ib_fake import FakeTWS

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def tws() -> AsyncIterator[FakeTWS]:
    fake = await FakeTWS().start()
    yield fake
    await fake.stop()


async def test_ib_option_flow(tws: FakeTWS) -> None:
    near = (dt.date.today() + dt.timedelta(days=3)).strftime("%Y%m%d")
    far = (dt.date.today() + dt.timedelta(days=24)).strftime("%Y%m%d")
    tws.option_chain["AAPL"] = ([near, far], [90.0, 95.0, 100.0, 105.0, 110.0])
    probed: list[tuple[str, str, float]] = []

    def iv(symbol: str, right: str, strike: float) -> float:
        probed.append((symbol, right, strike))
        return 0.33 if right == "P" else 0.21

    tws.option_iv = iv
    feed = IBFeed(FeedConfig(kind="ib", symbols=["AAPL"], bar_seconds=60),
                  IBConfig(port=tws.port, client_id=17, timeout_seconds=2.0))
    hub = AltHub(LexiconScorer())
    now = time.time_ns()
    src = IBOptions(hub, feed, poll_seconds=60, spot=lambda s: 100.0, now_ns=lambda: now)
    try:
        await src.start()
        await asyncio.sleep(0.2)
        assert tws.push_option_stats("AAPL", 1000, 2500, 40_000, 60_000, 0.27) == 1
        await asyncio.sleep(0.2)
        assert await src.poll("AAPL")
        assert probed == [("AAPL", "P", 95.0), ("AAPL", "C", 105.0)]  # ~5% OTM, first expiry >= 7 days
        (snap,) = hub.pending_options
        assert (snap.call_volume, snap.put_volume) == (1000, 2500) and snap.atm_iv == pytest.approx(0.27)
        assert snap.put_iv_25d == pytest.approx(0.33) and snap.call_iv_25d == pytest.approx(0.21)
        m = hub.sources["ib_options"].extra["AAPL"]
        assert m["pcr_volume"] == pytest.approx(2.5) and m["pcr_oi"] == pytest.approx(1.5)
        assert m["gamma_exposure"] is None  # not estimated from IB's underlying-level ticks (NaN -> None)
        tws.push_option_stats("AAPL", 1200, 2600, 40_000, 60_000, 0.27)
        await asyncio.sleep(0.2)
        assert await src.poll("AAPL")
        assert (hub.pending_options[-1].call_volume, hub.pending_options[-1].put_volume) == (200, 100)
        assert not math.isnan(hub.pending_options[-1].atm_iv)
    finally:
        await src.close()
        await feed.close()
