"""The daemon's start-up path with the Alpaca feed (assemble + warm_up + Engine.process) against
the fake Alpaca: news history and the news stream, and option chains, reach the engine's
batches, the ``news`` / ``options_flow`` tables and ``status``."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from algobotd.assembly import assemble, warm_up
from algobotd.config import load
from algobotd.control.adapter import EngineControl
from algobotd.store.writer import StoreWriter
from tests.altdata.test_alpaca_altdata import chain
from tests.brokers.alpaca_fake import FakeAlpaca, iso, running
from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(90)
MINUTE = 60 * 1_000_000_000


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAlpaca]:
    with running(monkeypatch) as f:
        yield f


async def test_alpaca_news_and_options_reach_engine_store_and_status(tmp_path: Path, fake: FakeAlpaca) -> None:
    now = time.time_ns()
    fake.news = [{"id": 1, "headline": "Apple beats estimates", "summary": "", "symbols": ["AAPL"], "source": "benzinga",
                  "created_at": iso(now - 3600 * 1_000_000_000), "updated_at": iso(now - 3600 * 1_000_000_000)}]
    fake.option_snapshots["AAPL"] = chain(100.0, dt.date.today() + dt.timedelta(days=20), 3000, 1000, 0.32, 0.22)
    cfg = load(None, ['feed.kind="alpaca"', 'feed.symbols=["AAPL", "MSFT"]', "feed.warmup_bars=0",
                      "feed.grace_seconds=1.0", "altdata.options=true", "altdata.options_poll_seconds=1",
                      "altdata.options_requests_per_minute=10000", *fake.config_overrides()], state_dir=str(tmp_path))
    store = StoreWriter(tmp_path / "algobot.duckdb", flush_seconds=0.05)
    a = assemble(cfg, store)
    assert a.altdata is not None and a.engine.alt_hub is a.altdata.hub
    hub = a.altdata.hub
    control = EngineControl(a.engine, a.feed, a.mode)
    await a.broker.connect()
    try:
        await warm_up(a)  # starts the news stream, then fetches news history (no bars to warm up)
        assert [n.headline for n in hub.pending_news] == ["Apple beats estimates"], (hub.status(now), fake.rest_calls)
        await wait_for(lambda: fake.news_clients() == 1)
        t = now - now % MINUTE + 2 * MINUTE  # a future interval: the flusher leaves it alone
        fake.push_news([{"id": 2, "headline": "Regulators probe Microsoft", "symbols": ["MSFT"], "created_at": t + 1}])
        await wait_for(lambda: len(hub.pending_news) == 2)
        it = a.feed.batches(None)
        nxt = asyncio.ensure_future(it.__anext__())
        await wait_for(lambda: fake.stream_clients[1] >= 1)
        for k in (0, 1):
            fake.push_bars([{"S": s, "t": t + k * MINUTE, "o": 100.0, "h": 101.0, "l": 99.0, "c": 100.0, "v": 1000}
                            for s in ("AAPL", "MSFT")])
            batch = await asyncio.wait_for(nxt, 10)
            await a.engine.process(batch)
            if k == 0:
                assert {n.id for n in batch.news} == {"alpaca:1", "alpaca:2"}
                await wait_for(lambda: len(hub.pending_options) >= 1)  # the poller had a spot price now
                nxt = asyncio.ensure_future(it.__anext__())
        st = control.status()["altdata"]["sources"]
        assert st["alpaca_news"]["ok"] and st["alpaca_news"]["events"] == 2
        assert st["alpaca_options"]["ok"] and st["alpaca_options"]["events"] >= 1
        await store.flush()
    finally:
        await a.altdata.close()
        await a.feed.close()
        await a.broker.close()
        await store.close()
    with duckdb.connect(str(tmp_path / "algobot.duckdb"), read_only=True) as con:
        news = con.execute("SELECT news_id, sentiment, scorer FROM news ORDER BY news_id").fetchall()
        flow = con.execute("SELECT symbol, pcr_volume, pcr_oi FROM options_flow").fetchall()
    assert [(r[0], r[1] > 0, r[2]) for r in news] == [("alpaca:1", True, "lexicon-vader-fin-v1"),
                                                     ("alpaca:2", False, "lexicon-vader-fin-v1")]
    assert flow and flow[0][0] == "AAPL" and flow[0][1] == pytest.approx(3.0) and flow[0][2] == pytest.approx(1.0)
