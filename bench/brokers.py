"""Broker adapter figures against the protocol-level fakes on 127.0.0.1: prints, asserts nothing.

    .venv/bin/python bench/brokers.py                 # Alpaca: 300 orders, 500 symbols x 60 bars; then IB
    .venv/bin/python bench/brokers.py --quick         # 50 orders, 50 symbols x 10 bars
    .venv/bin/python bench/brokers.py --broker alpaca # only the Alpaca part (IB: bench/brokers_ib.py)

Alpaca (tests/brokers/alpaca_fake.py, real alpaca-py clients):

1. Order round trip: ``AlpacaBroker.submit`` of one market order -> its ``Fill`` reaching the
   sink: alpaca-py's synchronous REST POST in ``asyncio.to_thread``, the fake's JSON trade
   update over the trading-stream websocket, alpaca-py's TradeUpdate parsing, our mapping.
   One order at a time; p50/p99/max in milliseconds.
2. Bar ingest: the fake sends ``symbols x bars`` one-minute bars as msgpack frames (one frame
   per interval, encoded before the clock starts) over the market-data websocket; we time
   from the first send to the last ``BarBatch`` leaving ``AlpacaFeed.batches`` (websocket read,
   msgpack decode, alpaca-py dispatch, validation and grouping in the BarClock). 500 symbols of
   5-second bars would be 100 bars/s; the target is 10x that. (Alpaca itself streams minute
   bars: 500 symbols are ~8 bars/s live.)
3. Quote ingest: the same for ``symbols x bars`` quotes (the busiest stream live), timed until
   the feed has taken the last one.

The fake runs in its own thread with its own event loop on the same 2 cores, so the figures
include its cost and contention for the GIL: pessimistic for the client.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402

from algobotd.brokers.alpaca import AlpacaBroker  # noqa: E402
from algobotd.config import AlpacaConfig, FeedConfig  # noqa: E402
from algobotd.domain import Fill, OrderRequest, Side  # noqa: E402
from algobotd.feeds.alpaca import AlpacaFeed  # noqa: E402
from tests.brokers.alpaca_fake import FakeAlpaca  # noqa: E402

MINUTE = 60 * 1_000_000_000


def acfg(f: FakeAlpaca) -> AlpacaConfig:
    return AlpacaConfig(rest_url=f.rest_url, data_url=f.rest_url, trading_stream_url=f.trading_stream_url,
                        data_stream_url=f.data_stream_url())


async def round_trips(f: FakeAlpaca, n: int) -> list[float]:
    broker = AlpacaBroker(acfg(f))
    got: dict[str, asyncio.Future[None]] = {}
    broker.set_sink(lambda ev: isinstance(ev, Fill) and not got[ev.client_order_id].done()
                    and got[ev.client_order_id].set_result(None))
    await broker.connect()
    out = []
    try:
        for k in range(n):
            cid = f"ab-{k + 1:08d}-AAPL"
            got[cid] = asyncio.get_running_loop().create_future()
            t0 = time.perf_counter()
            await broker.submit([OrderRequest(cid, "AAPL", Side.BUY, 1)])
            await asyncio.wait_for(got[cid], 10)
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        await broker.close()
    return out


async def ingest(f: FakeAlpaca, n_symbols: int, n_bars: int) -> tuple[float, int]:
    symbols = [f"S{i:04d}" for i in range(n_symbols)]
    feed = AlpacaFeed(FeedConfig(symbols=symbols, bar_seconds=60, grace_seconds=60.0), acfg(f))
    await feed.start()
    now = time.time_ns()
    t0 = now - now % MINUTE + 10 * MINUTE  # future-dated: completeness closes intervals, not the clock
    frames = [f.encode_bars([{"S": s, "t": t0 + k * MINUTE, "o": 10.0, "h": 11.0, "l": 9.0, "c": 10.5, "v": 100.0}
                             for s in symbols]) for k in range(n_bars)]
    it = feed.batches(None)
    try:
        start = time.perf_counter()
        f.push_frames(frames)
        n = 0
        while n < n_bars:
            b = await asyncio.wait_for(it.__anext__(), 60)
            assert b.valid.all()
            n += 1
        return time.perf_counter() - start, n
    finally:
        await it.aclose()
        await feed.close()


async def quote_ingest(f: FakeAlpaca, n_symbols: int, n_rounds: int) -> tuple[float, int]:
    """Quotes are the busiest stream: each one is dispatched by alpaca-py and kept by the BarClock."""
    symbols = [f"S{i:04d}" for i in range(n_symbols)]
    feed = AlpacaFeed(FeedConfig(symbols=symbols, bar_seconds=60, grace_seconds=60.0), acfg(f))
    await feed.start()
    t = time.time_ns() + 10 * MINUTE
    frames = [f.encode_quotes([(s, t + k, 10.0, 10.01) for s in symbols]) for k in range(n_rounds)]
    total = n_symbols * n_rounds
    try:
        start = time.perf_counter()
        f.push_frames(frames)
        while feed.quotes_in < total:
            await asyncio.sleep(0.001)
        return time.perf_counter() - start, total
    finally:
        await feed.close()


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


async def alpaca(orders: int, symbols: int, bars: int) -> None:
    f = FakeAlpaca().start()
    os.environ["APCA_API_KEY_ID"], os.environ["APCA_API_SECRET_KEY"] = f.key, f.secret
    f.prices["AAPL"] = 100.0
    try:
        rt = await round_trips(f, orders)
        print(f"alpaca order->fill round trip ({orders} orders): p50 {statistics.median(rt):.2f} ms  "
              f"p99 {pct(rt, 99):.2f} ms  max {max(rt):.2f} ms")
        secs, n = await ingest(f, symbols, bars)
        rate = symbols * n / secs
        print(f"alpaca bar ingest: {symbols} symbols x {n} bars in {secs:.3f} s = {rate:,.0f} bars/s "
              f"({rate / 100:.1f}x the 100 bars/s of 500 symbols of 5-second bars)")
        secs, n = await quote_ingest(f, symbols, bars)
        print(f"alpaca quote ingest: {n:,} quotes in {secs:.3f} s = {n / secs:,.0f} quotes/s")
    finally:
        f.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--broker", choices=("alpaca", "ib", "all"), default="all")
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # quiet
    if args.broker in ("alpaca", "all"):
        asyncio.run(alpaca(50 if args.quick else 300, 50 if args.quick else 500, 10 if args.quick else 60))
    ib = ROOT / "bench" / "brokers_ib.py"
    if args.broker in ("ib", "all") and ib.exists():
        return subprocess.call([sys.executable, str(ib), *(["--quick"] if args.quick else [])])
    return 0


if __name__ == "__main__":
    sys.exit(main())
