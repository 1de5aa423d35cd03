"""``algobotd backtest``: the live engine on simulated time, as fast as the machine allows.

Results go to their own DuckDB file (never the live store); the summary compares the
strategy, after commissions and slippage, with buy-and-hold of the same universe.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import math
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from algobotd.assembly import assemble, warm_up
from algobotd.validate.ensemble_bridge import require_champion
from algobotd.config import Config, dump
from algobotd.store.paths import prepare_result_file
from algobotd.store.writer import StoreWriter
from algobotd.validate.metrics import summarize

log = structlog.get_logger(__name__)

# Rows per result-file flush. Larger flushes cost the writer thread less CPU (100k vs 50k:
# ~20% less, every statement has a fixed cost), which counts when the cores are shared. The
# backlog the engine may queue before waiting (store.keep_up) is twice this; since the writer
# keeps up (BACKTEST_SWITCH_INTERVAL) it rarely builds, and peak memory was the same as at 50k.
BACKTEST_FLUSH_ROWS = 100_000

# GIL switch interval while a backtest runs. DuckDB's Python client takes the GIL between
# execution tasks (about every 2,048-row vector) to check for signals; the engine thread holds
# the GIL almost all the time, so at the default 5 ms each of those hand-overs stalls the store
# writer for up to 5 ms: a flush took ~5x its CPU time, the backlog filled and the engine
# waited in keep_up (~1 s of a 3.3 s run). At 20 us the writer keeps up on the other core.
BACKTEST_SWITCH_INTERVAL = 20e-6

SUMMARY_KEYS = ("total_return", "sharpe", "max_drawdown", "trades", "turnover", "commission", "final_equity",
                "buy_and_hold_return")


def _day_ns(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 1_000_000_000


def _end_ns(end: str | None) -> int | None:
    """--end is inclusive: stop at midnight UTC after that day."""
    return None if not end else _day_ns(dt.date.fromisoformat(end) + dt.timedelta(days=1))


@contextlib.contextmanager
def gil_switch_interval(seconds: float) -> Iterator[None]:
    """Set ``sys.setswitchinterval`` for a block (it is process-wide), then restore it."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


async def run_backtest(
    cfg: Config,
    out: Path,
    *,
    bars: int | None = None,
    start: str | None = None,
    end: str | None = None,
    data: str | None = None,
) -> dict[str, Any]:
    with gil_switch_interval(BACKTEST_SWITCH_INTERVAL):
        return await _run_backtest(cfg, out, bars, start, end, data)


async def _run_backtest(cfg: Config, out: Path, bars: int | None, start: str | None, end: str | None,
                        data: str | None) -> dict[str, Any]:
    if start:
        cfg = dataclasses.replace(cfg, feed=dataclasses.replace(cfg.feed, sim=dataclasses.replace(cfg.feed.sim, start=start)))
    cfg = dataclasses.replace(
        cfg,
        feed=dataclasses.replace(
            cfg.feed,
            sim=dataclasses.replace(cfg.feed.sim, speed="max"),
            replay=dataclasses.replace(cfg.feed.replay, speed="max"),
        ),
    )
    require_champion(cfg)
    # a backtest serves the champion as it is: no training (it would promote into the live registry)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, train_on_start=False))
    prepare_result_file(cfg, out, "backtest")
    t0 = time.perf_counter()
    store = StoreWriter(out, durable=False, flush_rows=max(cfg.store.flush_rows, BACKTEST_FLUSH_ROWS))
    a = assemble(cfg, store, replay_path=data)
    await a.broker.connect()
    await warm_up(a)
    engine, pf = a.engine, a.engine.portfolio
    end_ns = _end_ns(end)
    limit = bars if bars is not None else (None if end_ns else 2000)
    equity: list[float] = []
    bh: list[float] = []
    first: np.ndarray | None = None
    bh_index, bh_weight = np.empty(0, dtype=np.int64), np.empty(0)
    start_ns = None
    skip_before = _day_ns(dt.date.fromisoformat(start)) if (start and data) else None
    async for batch in a.feed.batches(None):
        if end_ns is not None and batch.ts >= end_ns:
            break
        if skip_before is not None and batch.ts < skip_before:
            continue
        await engine.process(batch)
        await store.keep_up()  # memory stays bounded when the engine outruns the disk
        if first is None:
            # buy-and-hold enters every priced symbol at the first bar's close, equal weights
            # (a symbol's last price never goes back to NaN, so the set stays the same)
            first = pf.last[: len(batch)].copy()
            bh_index = (first > 0).nonzero()[0]
            bh_weight = 1.0 / first[bh_index] / max(len(bh_index), 1)
            start_ns = batch.ts
        equity.append(pf.equity)
        bh.append(float(pf.last[bh_index] @ bh_weight) if len(bh_index) else math.nan)
        if limit is not None and len(equity) >= limit:
            break
    await a.feed.close()
    initial = cfg.broker.paper.initial_cash
    eq = np.array(equity)
    result = summarize(eq, initial, cfg.feed.bar_seconds)
    bh_stats = summarize(np.array(bh) * initial, initial, cfg.feed.bar_seconds) if bh else summarize(eq[:0], initial, cfg.feed.bar_seconds)
    result.update({
        "trades": engine.fills,
        "turnover": engine.traded_value / float(np.mean(eq)) if eq.size else 0.0,
        "commission": pf.commissions,
        "final_equity": float(eq[-1]) if eq.size else initial,
        "buy_and_hold_return": bh_stats["total_return"],
        "buy_and_hold": bh_stats,
        "bars": len(equity),
        "symbols": len(a.feed.symbols),
        "model_id": engine.model_id,
        "seconds": time.perf_counter() - t0,
    })
    run_id = uuid.uuid4().hex[:12]
    store.add("runs", (run_id, "backtest", start_ns, a.clock.now(), json.dumps(dump(cfg)), json.dumps(result)))
    await store.close()
    return result


def format_summary(r: dict[str, Any]) -> str:
    bh = r["buy_and_hold"]
    rows = [
        ("", "strategy", "buy & hold"),
        ("total return", f"{r['total_return']:+.2%}", f"{bh['total_return']:+.2%}"),
        ("annual return", f"{r['annual_return']:+.2%}", f"{bh['annual_return']:+.2%}"),
        ("annual volatility", f"{r['annual_volatility']:.2%}", f"{bh['annual_volatility']:.2%}"),
        ("sharpe", f"{r['sharpe']:.2f}", f"{bh['sharpe']:.2f}"),
        ("max drawdown", f"{r['max_drawdown']:.2%}", f"{bh['max_drawdown']:.2%}"),
        ("trades", str(r["trades"]), ""),
        ("turnover", f"{r['turnover']:.2f}x", ""),
        ("commission", f"{r['commission']:,.2f}", ""),
        ("final equity", f"{r['final_equity']:,.2f}", ""),
    ]
    lines = [f"{a:<18} {b:>14} {c:>14}" for a, b, c in rows]
    lines.append(f"{r['bars']} bars x {r['symbols']} symbols, model {r['model_id']}, {r['seconds']:.2f}s")
    return "\n".join(lines)
