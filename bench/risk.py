"""Per-batch cost of the risk layer (sizing + stops + breakers + pre-trade) inside the real engine.

    .venv/bin/python bench/risk.py                 # 500 symbols x 1,000 one-minute bars
    .venv/bin/python bench/risk.py --symbols 100 --bars 300

The SimFeed (fixed seed) draws warm-up + bars; a real Engine (paper broker, SimClock, a
non-durable DuckDB result file in a temp dir, as in backtests) processes them. The engine's risk
steps are timed from a subclass that wraps them with ``perf_counter``:

- stops + breakers: ``_risk_after_mark`` (volatility/freshness update, the stop check on every
  symbol, every breaker, and sending any stop orders, pre-trade included);
- sizing: ``_risk_targets`` (fractional Kelly, caps, risk budget);
- pre-trade: ``_pretrade`` (every order of the batch, denials recorded);
- the whole ``process()`` per batch, for reference (bars/equity/predictions storage included).

A second pass times ``on_price_update`` (one live quote between bars: mark, stops of that
symbol, breakers). Figures are medians / p99 over the batches; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from algobotd.brokers.paper import PaperBroker  # noqa: E402
from algobotd.clock import SimClock  # noqa: E402
from algobotd.config import load  # noqa: E402
from algobotd.engine import Engine  # noqa: E402
from algobotd.feeds.sim import SimFeed  # noqa: E402
from algobotd.ops import logging as oplog  # noqa: E402
from algobotd.store.writer import StoreWriter  # noqa: E402
from algobotd.symbols import SymbolIndex  # noqa: E402

TIMES: dict[str, list[float]] = defaultdict(list)


class TimedEngine(Engine):
    batch_risk = 0.0  # risk seconds spent in the batch being processed

    def _note(self, step: str, seconds: float) -> None:
        TIMES[step].append(seconds)
        self.batch_risk += seconds

    async def _risk_after_mark(self, *a, **k) -> None:  # type: ignore[override]
        t = time.perf_counter()
        await super()._risk_after_mark(*a, **k)
        self._note("stops+breakers", time.perf_counter() - t)

    def _risk_targets(self, *a, **k):  # type: ignore[override]
        t = time.perf_counter()
        out = super()._risk_targets(*a, **k)
        self._note("sizing", time.perf_counter() - t)
        return out

    def _pretrade(self, orders):  # type: ignore[override]
        t = time.perf_counter()
        out = super()._pretrade(orders)
        self._note("pretrade", time.perf_counter() - t)
        TIMES["orders checked"].append(len(orders))
        return out


async def run(symbols: int, bars: int, seed: int) -> None:
    oplog.setup("warning", "json", stream=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load(None, [f"feed.sim.symbols={symbols}", f"feed.sim.seed={seed}", 'feed.sim.speed="max"',
                          'model.kind="baseline"'], state_dir=str(Path(tmp) / "state"))
        feed = SimFeed(cfg.feed, max_bars=bars)
        history = await feed.history(cfg.feed.warmup_bars)
        live = [b async for b in feed.batches()]
        await feed.close()
        store = StoreWriter(Path(tmp) / "bench.duckdb", durable=False, flush_rows=200_000)
        clock = SimClock()
        index = SymbolIndex(feed.symbols)
        broker = PaperBroker(cfg.broker.paper, index, clock.now)
        engine = TimedEngine(cfg, index, broker, store, clock)
        await broker.connect()
        for b in history:
            clock.advance_to(b.ts + engine.bar_ns)
            engine.warm(b, store_bars=False)
        whole, risk_per_batch = [], []
        for b in live:
            engine.batch_risk = 0.0
            t = time.perf_counter()
            await engine.process(b)
            whole.append(time.perf_counter() - t)
            risk_per_batch.append(engine.batch_risk)
        ticks = []
        held = [p.symbol for p in engine.portfolio.positions()] or list(feed.symbols[:1])
        for k in range(2000):
            sym = held[k % len(held)]
            price = float(engine.portfolio.last[index[sym]]) * (1 + 0.0001 * ((k % 7) - 3))
            t = time.perf_counter()
            await engine.on_price_update(sym, clock.now(), price=price)
            ticks.append(time.perf_counter() - t)
        positions = len(engine.portfolio.positions())
        await store.close()
    n = len(live)
    per_batch = {k: sum(v) / n for k, v in TIMES.items() if k != "orders checked"}
    risk_total = sum(per_batch.values())
    print(f"risk layer, {symbols} symbols x {n} batches (after {len(history)} warm-up bars); "
          f"{positions} positions open at the end, {engine.fills} fills, {engine.risk.denials} denials")
    print(f"{'step':<18}{'mean us/batch':>15}{'median us':>12}{'p99 us':>10}{'calls':>8}")
    for name in ("sizing", "stops+breakers", "pretrade"):
        v = TIMES[name]
        med = statistics.median(v) * 1e6 if v else 0.0
        p99 = sorted(v)[int(0.99 * (len(v) - 1))] * 1e6 if v else 0.0
        print(f"{name:<18}{per_batch.get(name, 0.0) * 1e6:>15.1f}{med:>12.1f}{p99:>10.1f}{len(v):>8}")
    rb = sorted(risk_per_batch)
    print(f"{'risk total':<18}{risk_total * 1e6:>15.1f}{rb[len(rb) // 2] * 1e6:>12.1f}{rb[int(0.99 * (len(rb) - 1))] * 1e6:>10.1f}"
          f"{len(rb):>8}   (target < 1000 us per batch; the p99 is mostly other processes on a shared machine)")
    print(f"{'process() total':<18}{sum(whole) / n * 1e6:>15.1f}   risk share {risk_total / (sum(whole) / n):.1%}")
    orders = TIMES["orders checked"]
    print(f"orders checked per pre-trade call: mean {statistics.mean(orders) if orders else 0:.1f}, max {max(orders, default=0):.0f}")
    print(f"on_price_update (one live tick): median {statistics.median(ticks) * 1e6:.1f} us, "
          f"p99 {sorted(ticks)[int(0.99 * (len(ticks) - 1))] * 1e6:.1f} us")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--symbols", type=int, default=500)
    p.add_argument("--bars", type=int, default=1000)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()
    asyncio.run(run(args.symbols, args.bars, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
