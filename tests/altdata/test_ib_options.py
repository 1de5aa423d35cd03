"""IB options flow against the fake TWS (real ib_async): option volume / open interest / IV ticks
on the underlying, reqSecDefOptParams, and the near-the-money strip probe (greeks, per-contract
open interest via generic tick 101, volume) behind the IV skew, dealer gamma and unusual flags."""

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

    def gamma_oi(symbol: str, right: str, strike: float) -> tuple[float, float, float]:
        # calls: 1,000 open, puts: 2,000; a 95 put trading 5,000 contracts (> 2x its open interest)
        return (0.05 if strike == 100.0 else 0.02, 1000.0 if right == "C" else 2000.0,
                5000.0 if (right, strike) == ("P", 95.0) else 50.0)

    tws.option_gamma_oi = gamma_oi
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
        # the strip: every strike near spot (5 here), both rights, in the first expiry >= 7 days
        assert sorted(probed) == sorted(("AAPL", r, k) for k in (90.0, 95.0, 100.0, 105.0, 110.0) for r in "PC")
        (snap,) = hub.pending_options
        assert (snap.call_volume, snap.put_volume) == (1000, 2500) and snap.atm_iv == pytest.approx(0.27)
        assert snap.put_iv_25d == pytest.approx(0.33) and snap.call_iv_25d == pytest.approx(0.21)  # ~5% OTM
        m = hub.sources["ib_options"].extra["AAPL"]
        assert m["pcr_volume"] == pytest.approx(2.5) and m["pcr_oi"] == pytest.approx(1.5)
        # dealer gamma: sum over strikes of (call gamma x 1,000 - put gamma x 2,000) x 100 x spot^2 x 1%
        expected = sum(g * (1000.0 - 2000.0) for g in (0.02, 0.02, 0.05, 0.02, 0.02)) * 100 * 100.0**2 * 0.01
        assert m["gamma_exposure"] == pytest.approx(expected) and expected == pytest.approx(-1.3e6)
        assert snap.gamma_exposure == pytest.approx(expected)
        assert (snap.call_oi, snap.put_oi) == (40_000, 60_000)  # the underlying's totals
        assert m["unusual_contracts"] == 1 and snap.unusual == 1.0  # the 95 put
        assert not tws_lines_left(tws)  # the strip's market-data lines were cancelled
        tws.push_option_stats("AAPL", 1200, 2600, 40_000, 60_000, 0.27)
        await asyncio.sleep(0.2)
        assert await src.poll("AAPL")
        assert (hub.pending_options[-1].call_volume, hub.pending_options[-1].put_volume) == (200, 100)
        assert not math.isnan(hub.pending_options[-1].atm_iv)
    finally:
        await src.close()
        await feed.close()


def tws_lines_left(tws: FakeTWS) -> int:
    """Option-stats subscriptions other than the underlying's (none: the strip is cancelled)."""
    return sum(1 for c in tws.clients for sym in c.option_stats.values() if sym != "AAPL")
