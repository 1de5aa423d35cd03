"""Alpaca news (NewsClient history, NewsDataStream live) and option chains against the fake
Alpaca on 127.0.0.1, through the real alpaca-py clients; a failing source goes NaN, not down."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections.abc import Iterator

import numpy as np
import pytest

from algobotd.altdata.alpaca_news import AlpacaNews
from algobotd.altdata.alpaca_options import AlpacaOptions
from algobotd.altdata.hub import AltHub
from algobotd.altdata.runtime import AltData
from algobotd.altdata.sentiment import LexiconScorer
from algobotd.config import AlpacaConfig
from algobotd.features.engine import FeatureEngine
from tests.altdata.conftest import NS, T0, batch
from tests.brokers.alpaca_fake import FakeAlpaca, iso, running
from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(60)



@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAlpaca]:
    with running(monkeypatch) as f:
        yield f


def acfg(f: FakeAlpaca) -> AlpacaConfig:
    return AlpacaConfig(rest_url=f.rest_url, data_url=f.rest_url, trading_stream_url=f.trading_stream_url,
                        data_stream_url=f.data_stream_url(), reconnect_initial_seconds=0.05)


def article(i: int, ts: int, symbols: list[str], headline: str) -> dict:
    return {"id": 1000 + i, "headline": headline, "summary": "", "author": "x", "content": "", "url": "",
            "symbols": symbols, "source": "benzinga", "created_at": iso(ts), "updated_at": iso(ts), "images": []}


async def test_news_history_paged_scored_stored_once(fake: FakeAlpaca) -> None:
    heads = ["AAPL beats estimates", "MSFT misses estimates", "TSLA recall widens"]
    fake.news = [article(i, T0 - (120 - i) * NS, [["AAPL"], ["MSFT", "AAPL"], ["TSLA"]][i % 3], heads[i % 3])
                 for i in range(120)]
    rows: list[tuple] = []

    class Store:
        def add(self, table: str, row: tuple) -> None:
            rows.append(row)

    hub = AltHub(LexiconScorer(), Store())
    src = AlpacaNews(hub, ("AAPL", "MSFT"), acfg(fake), live=False)
    assert await src.warm(T0 - 3600 * NS, T0) == 80  # TSLA-only articles are not ours
    assert fake.rest_calls.count("/v1beta1/news") >= 2  # alpaca-py followed next_page_token
    assert await src.warm(T0 - 3600 * NS, T0) == 0  # history again (restart, overlap): nothing twice
    assert len(rows) == 80 and all(r[-1] == "lexicon-vader-fin-v1" for r in rows)
    pos = [n for n in hub.pending_news if n.headline.startswith("AAPL")]
    neg = [n for n in hub.pending_news if n.headline.startswith("MSFT")]
    assert all(n.sentiment > 0 for n in pos) and all(n.sentiment < 0 for n in neg)
    assert neg[0].symbols == ("MSFT", "AAPL") and neg[0].id.startswith("alpaca:")


async def test_news_stream_live_into_features(fake: FakeAlpaca) -> None:
    hub = AltHub(LexiconScorer())
    src = AlpacaNews(hub, ("AAPL", "MSFT"), acfg(fake), stream_url=f"ws://127.0.0.1:{fake.ws_port}/v1beta1/news")
    now = time.time_ns() // (60 * NS) * (60 * NS)
    alt = AltData(hub, [src])
    await alt.warm([batch(now - 60 * NS)], 60 * NS)  # starts the stream, then REST history (empty here)
    try:
        assert await src.wait_connected(5)
        await wait_for(lambda: fake.news_clients() == 1)
        assert any(s.get("news") == ["AAPL", "MSFT"] for s in fake.subscriptions)
        fake.push_news([{"id": 7, "headline": "Analysts upgrade AAPL after record quarter", "symbols": ["AAPL"],
                         "created_at": now + 5 * NS},
                        {"id": 7, "headline": "Analysts upgrade AAPL after record quarter", "symbols": ["AAPL"],
                         "created_at": now + 5 * NS},  # a duplicate (reconnect replay)
                        {"id": 8, "headline": "Other company news", "symbols": ["ZZZZ"], "created_at": now}])
        await wait_for(lambda: len(hub.pending_news) == 1)
        await asyncio.sleep(0.1)
        assert len(hub.pending_news) == 1  # the duplicate and the foreign symbol never reach the features
        eng = FeatureEngine(symbols=("AAPL", "MSFT"))
        col = eng.names.index("news_sent")
        xs = [eng.update(hub.attach(b, 60 * NS))[:, col].copy() for b in (batch(now - 60 * NS), batch(now))]
        assert xs[0][0] == 0.0 and xs[1][0] > 0.0 and xs[1][1] == 0.0
        assert hub.status(now)["sources"]["alpaca_news"]["ok"] is True
    finally:
        await alt.close()
    assert not src.connected


async def test_news_stream_given_up_by_alpaca_py_is_restarted(fake: FakeAlpaca) -> None:
    hub = AltHub(LexiconScorer())
    src = AlpacaNews(hub, ("AAPL",), acfg(fake), stream_url=f"ws://127.0.0.1:{fake.ws_port}/v1beta1/news")
    await src.start()
    try:
        assert await src.wait_connected(5)
        await wait_for(lambda: fake.news_clients() == 1)
        subs = len(fake.subscriptions)
        fake.news_auth_error = "insufficient subscription"  # alpaca-py's loop returns on this, for good
        fake.drop_streams(refuse=False)
        await wait_for(lambda: hub.status(T0)["sources"]["alpaca_news"]["ok"] is False)  # NaN features meanwhile
        await wait_for(lambda: src.connected and fake.news_clients() == 1 and len(fake.subscriptions) > subs)
        now = time.time_ns()
        fake.push_news([{"id": 9, "headline": "Analysts upgrade AAPL", "symbols": ["AAPL"], "created_at": now}])
        await wait_for(lambda: len(hub.pending_news) == 1)  # a fresh stream, subscribed again
        assert hub.status(T0)["sources"]["alpaca_news"]["ok"] is True
    finally:
        await src.close()
    assert not src.connected and fake.news_clients() == 0


async def test_news_outage_degrades_to_nan_and_recovers(fake: FakeAlpaca) -> None:
    hub = AltHub(LexiconScorer())
    src = AlpacaNews(hub, ("AAPL",), acfg(fake), live=False)
    fake.fail_paths.add("/v1beta1/news")
    assert await src.warm(T0 - 60 * NS, T0) == 0  # no exception: a warning and a down source
    st = hub.status(T0)["sources"]["alpaca_news"]
    assert st["ok"] is False and "HTTP 500" in st["last_error"]
    eng = FeatureEngine(symbols=("AAPL", "MSFT"))
    X = eng.update(hub.attach(batch(T0), 60 * NS))
    news_cols = [eng.names.index(n) for n in ("news_sent", "news_count", "news_age")]
    assert np.isnan(X[:, news_cols]).all()
    fake.fail_paths.clear()
    await src.warm(T0 - 60 * NS, T0)
    X = eng.update(hub.attach(batch(T0 + 60 * NS), 60 * NS))
    assert (X[:, news_cols[0]] == 0.0).all()  # recovered: numbers again


def occ(root: str, exp: dt.date, right: str, strike: float) -> str:
    return f"{root}{exp:%y%m%d}{right}{int(strike * 1000):08d}"


def chain(spot: float, exp: dt.date, put_vol: float, call_vol: float, put_iv: float, call_iv: float) -> dict:
    out = {}
    for k in (0.9, 0.95, 1.0, 1.05, 1.1):
        strike = round(spot * k, 2)
        for right in ("C", "P"):
            moneyness = (k - 1.0) if right == "C" else (1.0 - k)
            delta = (0.5 - 5 * moneyness) * (1 if right == "C" else -1)
            iv = 0.25 + (put_iv - 0.25 if right == "P" and k < 1 else 0) + (call_iv - 0.25 if right == "C" and k > 1 else 0)
            out[occ("AAPL", exp, right, strike)] = {
                "dailyBar": {"v": put_vol / 5 if right == "P" else call_vol / 5},
                "impliedVolatility": iv, "greeks": {"delta": delta, "gamma": 0.02},
                "openInterest": 1000, "latestQuote": {}, "latestTrade": {}}
    return out


async def test_option_chain_poll_to_options_features(fake: FakeAlpaca) -> None:
    exp = dt.date.today() + dt.timedelta(days=20)
    fake.option_snapshots["AAPL"] = chain(190.0, exp, put_vol=3000, call_vol=1000, put_iv=0.32, call_iv=0.22)
    rows: list[tuple] = []

    class Store:
        def add(self, table: str, row: tuple) -> None:
            rows.append((table, row))

    hub = AltHub(LexiconScorer(), Store())
    now = time.time_ns()
    src = AlpacaOptions(hub, ("AAPL",), acfg(fake), poll_seconds=60, requests_per_minute=120,
                        spot=lambda s: 190.0, now_ns=lambda: now)
    assert src.interval == pytest.approx(60.0)  # 1 underlying every 60 s; 2 requests/poll within 120/min
    assert await src.poll("AAPL")
    assert fake.rest_calls[-2:] == ["/v1beta1/options/snapshots/AAPL", "/v2/options/contracts"]
    (snap,) = hub.pending_options
    assert snap.put_volume == 3000 and snap.call_volume == 1000
    assert snap.put_iv_25d == pytest.approx(0.32) and snap.call_iv_25d == pytest.approx(0.22)
    m = hub.sources["alpaca_options"].extra["AAPL"]
    assert m["pcr_volume"] == pytest.approx(3.0) and m["pcr_oi"] == pytest.approx(1.0)
    assert m["gamma_exposure"] == pytest.approx(0.0)  # equal call and put OI x gamma cancel out
    assert m["unusual"] == 0.0
    assert rows[0][0] == "options_flow" and rows[0][1][1] == "AAPL"
    eng = FeatureEngine(symbols=("AAPL", "MSFT"))
    X = eng.update(hub.attach(batch(now - now % (60 * NS)), 60 * NS))
    assert X[0, eng.names.index("opt_pcr")] == pytest.approx(math.log(3001 / 1001))
    assert X[0, eng.names.index("opt_iv_skew")] == pytest.approx(0.10)
    assert np.isnan(X[1, eng.names.index("opt_pcr")])  # MSFT: no chain polled
    # open interest, dealer gamma and the unusual flag reach the features too (equal OI: log 1 = 0)
    assert X[0, eng.names.index("opt_pcr_oi")] == pytest.approx(0.0) and X[0, eng.names.index("opt_gex")] == 0.0
    assert X[0, eng.names.index("opt_unusual")] == 0.0 and np.isnan(X[1, eng.names.index("opt_gex")])
    fake.fail_paths.add("/v1beta1/options")
    assert not await src.poll("AAPL")
    X = eng.update(hub.attach(batch(now - now % (60 * NS) + 60 * NS), 60 * NS))
    assert np.isnan(X[0, eng.names.index("opt_pcr")])  # a failing chain source reads NaN, not stale values
    assert np.isnan(X[0, eng.names.index("opt_gex")]) and np.isnan(X[0, eng.names.index("opt_pcr_oi")])
