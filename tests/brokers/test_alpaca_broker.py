"""AlpacaBroker / AlpacaFeed / check-broker against the fake Alpaca (real alpaca-py clients)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from algobotd.brokers.alpaca import AlpacaBroker, resolve_keys
from algobotd.brokers.base import BrokerError
from algobotd.brokers.check import check_broker
from algobotd.config import AlpacaConfig, ConfigError, FeedConfig, load
from algobotd.domain import (
    Fill,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
)
from algobotd.feeds.alpaca import AlpacaFeed
from tests.brokers.alpaca_fake import FakeAlpaca, iso, running
from tests.conftest import algobotd_cmd, wait_for

pytestmark = pytest.mark.timeout(60)



@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAlpaca]:
    with running(monkeypatch) as f:
        f.prices.update({"AAPL": 190.0, "MSFT": 410.0})
        yield f


def acfg(f: FakeAlpaca, **kw: object) -> AlpacaConfig:
    return AlpacaConfig(rest_url=f.rest_url, data_url=f.rest_url, trading_stream_url=f.trading_stream_url,
                        data_stream_url=f.data_stream_url(), **kw)  # type: ignore[arg-type]


async def test_connect_submit_fill_and_snapshot(fake: FakeAlpaca) -> None:
    b = AlpacaBroker(acfg(fake))
    events: list[object] = []
    b.set_sink(events.append)
    await b.connect()
    try:
        assert b.connected and b.account_number == "PA0000FAKE"
        await b.submit([OrderRequest("ab-00000001-AAPL", "AAPL", Side.BUY, 10)])
        await wait_for(lambda: any(isinstance(e, Fill) for e in events))
        await asyncio.sleep(0.1)
        fills = [e for e in events if isinstance(e, Fill)]
        ups = [e for e in events if isinstance(e, OrderUpdate)]
        assert len(fills) == 1 and fills[0].qty == 10 and fills[0].price == 190.0
        assert [u.status for u in ups] == [OrderStatus.ACCEPTED, OrderStatus.FILLED]  # no stale ACCEPTED after FILLED
        snap = await b.snapshot(0)
        assert snap.positions == {"AAPL": 10}
        assert [f.exec_id for f in snap.fills] == [fills[0].exec_id]  # same id live and in the snapshot
        assert snap.cash == 100_000 - 1900
        # a resubmission of a known id never makes a second order
        await b.submit([OrderRequest("ab-00000001-AAPL", "AAPL", Side.BUY, 10)])
        assert len(fake.orders) == 1
    finally:
        await b.close()


async def test_cancel_and_limit(fake: FakeAlpaca) -> None:
    b = AlpacaBroker(acfg(fake))
    events: list[object] = []
    b.set_sink(events.append)
    await b.connect()
    try:
        await b.submit([OrderRequest("ab-00000002-MSFT", "MSFT", Side.BUY, 5, OrderType.LIMIT, 400.0)])
        await wait_for(lambda: any(isinstance(e, OrderUpdate) for e in events))
        await b.cancel("ab-00000002-MSFT")
        await wait_for(lambda: any(isinstance(e, OrderUpdate) and e.status is OrderStatus.CANCELED for e in events))
        await b.submit([OrderRequest("ab-00000003-MSFT", "MSFT", Side.BUY, 5, OrderType.LIMIT, 400.0)])
        await b.cancel_all()
        await wait_for(lambda: all(o["status"] == "canceled" for o in fake.orders.values()))
    finally:
        await b.close()


async def test_bad_and_missing_keys_are_clear(fake: FakeAlpaca, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.setenv("APCA_API_SECRET_KEY", "wrong")
    b = AlpacaBroker(acfg(fake))
    with pytest.raises(BrokerError) as exc:
        await b.connect()
    assert exc.value.code == "auth" and "HTTP 401" in exc.value.message and "\n" not in str(exc.value)
    monkeypatch.delenv("APCA_API_KEY_ID")
    monkeypatch.delenv("APCA_API_SECRET_KEY")
    with pytest.raises(ConfigError, match="APCA_API_KEY_ID"):
        resolve_keys(AlpacaConfig())
    creds = tmp_path / "alpaca.env"
    creds.write_text(f"APCA_API_KEY_ID={fake.key}\nAPCA_API_SECRET_KEY={fake.secret}\n")
    creds.chmod(0o644)
    with pytest.raises(ConfigError, match="0600"):
        resolve_keys(AlpacaConfig(credentials_file=str(creds)))
    creds.chmod(0o600)
    assert resolve_keys(AlpacaConfig(credentials_file=str(creds))) == (fake.key, fake.secret)
    with pytest.raises(BrokerError) as exc2:  # data stream with bad keys: clear error too
        monkeypatch.setenv("APCA_API_KEY_ID", fake.key)
        monkeypatch.setenv("APCA_API_SECRET_KEY", "wrong")
        feed = AlpacaFeed(FeedConfig(symbols=["AAPL"]), acfg(fake), connect_timeout=3)
        await feed.start()
    assert exc2.value.code == "auth"


def test_cli_run_with_bad_keys_exits_78_one_line(fake: FakeAlpaca, tmp_path: Path, cli_env: dict[str, str]) -> None:
    env = dict(cli_env, APCA_API_KEY_ID=fake.key, APCA_API_SECRET_KEY="wrong")
    sets = [a for o in fake.config_overrides() for a in ("--set", o)]
    args = ["--set", 'broker.kind="alpaca"', "--set", 'feed.kind="alpaca"', "--set", 'feed.symbols=["AAPL"]', *sets]
    p = subprocess.run(algobotd_cmd("run", "--state-dir", str(tmp_path), *args), env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 78, p.stderr
    assert "Traceback" not in p.stderr and "broker error: [auth]" in p.stderr
    env.pop("APCA_API_KEY_ID")
    env.pop("APCA_API_SECRET_KEY")
    p = subprocess.run(algobotd_cmd("check-broker", *args), env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 78 and "Traceback" not in p.stderr + p.stdout
    assert "APCA_API_KEY_ID" in p.stdout + p.stderr


async def test_check_broker(fake: FakeAlpaca) -> None:
    fake.history = {"AAPL": [{"t": iso(), "o": 1, "h": 1, "l": 1, "c": 1, "v": 1, "n": 1, "vw": 1}],
                    "MSFT": [{"t": iso(), "o": 1, "h": 1, "l": 1, "c": 1, "v": 1, "n": 1, "vw": 1}]}
    fake.positions["AAPL"] = [3.0, 180.0]
    base = ['broker.kind="alpaca"', 'feed.kind="alpaca"', *fake.config_overrides()]
    lines: list[str] = []
    cfg = load(None, [*base, 'feed.symbols=["AAPL", "MSFT"]'])
    assert await check_broker(cfg, lines.append) == 0, lines
    text = "\n".join(lines)
    assert "PA0000FAKE" in text and "AAPL +3" in text and "buying power 200,000.00" in text and text.endswith("OK")
    lines.clear()
    cfg = load(None, [*base, 'feed.symbols=["AAPL", "ZZZZ"]', 'alpaca.data_feed="sip"'])
    assert await check_broker(cfg, lines.append) == 1
    assert "no sip market data permission" in lines[-1]


def test_check_broker_cli_ok(fake: FakeAlpaca, cli_env: dict[str, str]) -> None:
    fake.history = {"AAPL": [{"t": iso(), "o": 1, "h": 1, "l": 1, "c": 1, "v": 1, "n": 1, "vw": 1}]}
    env = dict(cli_env, APCA_API_KEY_ID=fake.key, APCA_API_SECRET_KEY=fake.secret)
    sets = [a for o in [*fake.config_overrides(), 'broker.kind="alpaca"', 'feed.kind="alpaca"',
                        'feed.symbols=["AAPL"]'] for a in ("--set", o)]
    p = subprocess.run(algobotd_cmd("check-broker", *sets), env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "account: PA0000FAKE" in p.stdout and "AAPL: ok" in p.stdout


async def test_feed_history_and_live_bars(fake: FakeAlpaca) -> None:
    now = time.time_ns()
    minute = 60 * 1_000_000_000
    start = now - now % minute - 5 * minute
    fake.history = {s: [{"t": iso(start + k * minute), "o": 10 + k, "h": 11 + k, "l": 9 + k, "c": 10.5 + k,
                         "v": 100, "n": 1, "vw": 10} for k in range(5)] for s in ("AAPL", "MSFT")}
    feed = AlpacaFeed(FeedConfig(symbols=["AAPL", "MSFT"], bar_seconds=60, grace_seconds=1.0), acfg(fake))
    try:
        hist = await feed.history(3, None)
        assert [b.ts for b in hist] == [start + k * minute for k in (2, 3, 4)]
        assert hist[-1].valid.all() and list(hist[-1].close) == [14.5, 14.5]
        it = feed.batches(None)
        nxt = asyncio.ensure_future(it.__anext__())
        await wait_for(lambda: fake.stream_clients[1] == 1)
        t = now - now % minute + 2 * minute  # ahead of the wall clock: only completeness closes it
        fake.push_quote("AAPL", t + 1, 99.0, 101.0)
        fake.push_bars([{"S": "AAPL", "t": t, "o": 100, "h": 102, "l": 99, "c": 101, "v": 500},
                        {"S": "MSFT", "t": t, "o": 200, "h": 202, "l": 199, "c": 201, "v": 50},
                        {"S": "MSFT", "t": t, "o": float("nan"), "h": 1, "l": 1, "c": 1, "v": 1}])
        batch = await asyncio.wait_for(nxt, 5)
        assert batch.ts == t and batch.valid.all() and list(batch.close) == [101, 201]
        assert batch.bid[0] == 99.0 and batch.ask[0] == 101.0
        assert feed.barclock.dropped == {"nan": 1}
        assert fake.subscriptions[0]["bars"] == ["AAPL", "MSFT"]
    finally:
        await feed.close()


def test_live_flag_is_loud(fake: FakeAlpaca, capsys: pytest.CaptureFixture[str]) -> None:
    async def go() -> None:
        b = AlpacaBroker(acfg(fake, paper=False))
        await b.connect()
        await b.close()
    asyncio.run(go())
    out = capsys.readouterr()
    assert "LIVE TRADING" in out.out + out.err


@pytest.fixture(autouse=True)
def _no_real_alpaca() -> None:
    assert "alpaca.markets" not in os.environ.get("APCA_API_BASE_URL", "")


async def test_submit_outcome_unknown_is_resolved_by_reconciliation(fake: FakeAlpaca, tmp_path: Path) -> None:
    from algobotd.brokers.reconcile import Reconciler
    from algobotd.clock import LiveClock
    from algobotd.engine import Engine
    from algobotd.store.writer import StoreWriter
    from algobotd.symbols import SymbolIndex

    cfg = load(None, ['feed.symbols=["AAPL"]'], state_dir=str(tmp_path))
    b = AlpacaBroker(acfg(fake))
    store = StoreWriter(tmp_path / "s.duckdb")
    eng = Engine(cfg, SymbolIndex(["AAPL"]), b, store, LiveClock())
    await b.connect()
    rec = Reconciler(eng, b)
    await rec.run_once()
    try:
        fake.auto_fill = fake.announce_new = False  # only REST or reconciliation can tell us

        def post_then_drop(self: Any) -> None:  # the venue takes the order, the answer is lost
            fake.place(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.close_connection = True
        handler = fake.http.RequestHandlerClass
        real = handler.do_POST
        handler.do_POST = post_then_drop  # type: ignore[method-assign]
        req = OrderRequest("ab-00000001-AAPL", "AAPL", Side.BUY, 5, OrderType.LIMIT, 90.0, created_ts=time.time_ns())
        lost = OrderRequest("ab-00000002-AAPL", "AAPL", Side.BUY, 5, OrderType.LIMIT, 90.0, created_ts=time.time_ns())
        eng.track_order(req, 0, OrderStatus.NEW)
        await b.submit([req])
        handler.do_POST = real  # type: ignore[method-assign]
        assert eng.open_orders["ab-00000001-AAPL"].status is OrderStatus.NEW  # unknown: left open
        eng.track_order(lost, 0, OrderStatus.NEW)  # a row whose submit never left us
        await wait_for(lambda: rec.runs >= 2)  # the adapter asked for a pass
        assert eng.open_orders["ab-00000001-AAPL"].status is OrderStatus.ACCEPTED
        assert "ab-00000002-AAPL" not in eng.open_orders  # resolved: cancelled, not resubmitted
        assert len(fake.orders) == 1
    finally:
        await rec.close()
        await b.close()
        await store.close()
