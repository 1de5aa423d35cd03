"""IB adapter figures against the fake TWS (tests/brokers/ib_fake.py) on 127.0.0.1: prints, asserts nothing.

    .venv/bin/python bench/brokers_ib.py            # 500 orders, 500 symbols x 120 five-second bars
    .venv/bin/python bench/brokers_ib.py --quick    # 50 orders, 50 symbols x 24 bars

1. Order round trip: ``IBBroker.submit`` of one market order -> the ``Fill`` reaching the sink
   (placeOrder over the socket, the fake's openOrder/orderStatus/execDetails/commissionReport,
   ib_async decoding, our mapping; the fill is released when its commission report arrives).
   Orders go one at a time, ``--gap-ms`` apart (default 25 ms = 40 orders/s): ib_async queues
   requests beyond 45 per second (TWS allows 50 messages/s), and a faster burst measures that
   queue, not the adapter (``--gap-ms 0`` shows it). p50/p99/max in milliseconds.
2. Bar ingest: the fake writes ``symbols x bars`` real-time bar messages in one burst (encoded
   before the clock starts); we time from the write to the last ``BarBatch`` leaving
   ``IBFeed.batches`` (socket read, ib_async decode, RealTimeBarList event, validation and
   aggregation in the BarClock into ``--bar-seconds`` batches). 500 symbols of 5-second bars
   is 100 bars/s live; the target is 10x that.

The fake runs on the same event loop and core as the client, so the figures are pessimistic for
the client. ib_async's own request throttle (45 requests/s, like TWS's limit) is lifted for the
set-up of 500 x 2 subscriptions only, so the run does not take half a minute to start.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402

from algobotd.brokers.ib import IBBroker  # noqa: E402
from algobotd.config import FeedConfig, IBConfig  # noqa: E402
from algobotd.domain import Fill, OrderRequest, Side  # noqa: E402
from algobotd.feeds.ib import IBFeed  # noqa: E402
from tests.brokers.ib_fake import FakeTWS, encode  # noqa: E402


async def round_trips(tws: FakeTWS, n: int, gap: float) -> list[float]:
    cfg = IBConfig(port=tws.port, client_id=17, account=tws.account, commission_wait_seconds=2.0)
    with tempfile.TemporaryDirectory() as d:
        broker = IBBroker(cfg, time.time_ns, Path(d))
        got: dict[str, asyncio.Future[None]] = {}
        broker.set_sink(lambda ev: isinstance(ev, Fill) and not got[ev.client_order_id].done()
                        and got[ev.client_order_id].set_result(None))
        await broker.connect()
        await asyncio.sleep(1.1)  # the start-up requests leave the 1-second throttle window
        loop = asyncio.get_running_loop()
        out = []
        for i in range(n):
            cid = f"ab-{i + 1:08d}-AAPL"
            got[cid] = loop.create_future()
            t0 = time.perf_counter()
            await broker.submit([OrderRequest(cid, "AAPL", Side.BUY if i % 2 else Side.SELL, 10)])
            await asyncio.wait_for(got[cid], 5)
            out.append((time.perf_counter() - t0) * 1e3)
            await asyncio.sleep(gap)
        await broker.close()
    return out


async def ingest(tws: FakeTWS, n_symbols: int, n_bars: int, bar_seconds: int) -> tuple[float, int, int]:
    symbols = [f"S{i:04d}" for i in range(n_symbols)]
    feed = IBFeed(FeedConfig(kind="ib", symbols=symbols, bar_seconds=bar_seconds, grace_seconds=2.0),
                  IBConfig(port=tws.port, client_id=27, timeout_seconds=30.0))
    feed.ib.client.MaxRequests = 0  # set-up only: see the module docstring
    batches = feed.batches(None)
    first = asyncio.ensure_future(batches.__anext__())
    while len(tws.subscribed()) < n_symbols:
        await asyncio.sleep(0.05)
    client = next(c for c in tws.clients if c.bars)
    by_symbol = {sym: req for req, sym in client.bars.items()}
    t0 = (int(time.time()) // bar_seconds + 2) * bar_seconds  # future: the wall-clock flusher stays out
    blob = b"".join(encode(50, 3, by_symbol[s], t0 + 5 * k, 100, 101, 99, 100.5, 10, 100.2, 3)
                    for k in range(n_bars) for s in symbols)
    expected = n_bars * 5 // bar_seconds
    start = time.perf_counter()
    client.writer.write(blob)
    n = 1
    await first
    while n < expected:
        await batches.__anext__()
        n += 1
    elapsed = time.perf_counter() - start
    bars_in = feed.bars_in
    await batches.aclose()
    await feed.close()
    return elapsed, bars_in, n


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--orders", type=int, default=500)
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--bars", type=int, default=120, help="5-second bars per symbol")
    ap.add_argument("--bar-seconds", type=int, default=60)
    ap.add_argument("--gap-ms", type=float, default=25.0, help="pause between orders")
    a = ap.parse_args()
    if a.quick:
        a.orders, a.symbols, a.bars = 50, 50, 24
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings only
    tws = await FakeTWS(auto_fill=True, fill_price=100.0).start()
    try:
        rt = sorted(await round_trips(tws, a.orders, a.gap_ms / 1e3))
        q = statistics.quantiles(rt, n=100, method="inclusive")
        print(f"order->fill round trip ({a.orders} market orders, one at a time, {a.gap_ms:g} ms apart)")
        print(f"  p50 {q[49]:.2f} ms   p99 {q[98]:.2f} ms   max {rt[-1]:.2f} ms")
        elapsed, bars_in, n = await ingest(tws, a.symbols, a.bars, a.bar_seconds)
        rate = bars_in / elapsed
        live = a.symbols / 5
        print(f"bar ingest ({a.symbols} symbols x {a.bars} five-second bars -> {n} batches of {a.bar_seconds} s)")
        print(f"  {bars_in:,} bars in {elapsed:.3f} s = {rate:,.0f} bars/s; live load {live:,.0f} bars/s "
              f"-> headroom {rate / live:,.0f}x (target >= 10x)")
    finally:
        await tws.stop()


if __name__ == "__main__":
    asyncio.run(main())
