"""One Monte Carlo path = one full run of the live ``Engine`` (model, Kelly sizing, stops,
breakers, pre-trade checks, paper fills with costs) on a generated market.

What makes a path cheap without a second engine:
- lockstep: with the momentum baseline, a chunk of paths runs as *one* engine with one book per
  path (algobotd/book.py): per-symbol work (marking, volatility, stops, signals, fills) is done
  once for all paths, while each book keeps its own cash, latch, breakers, limits and sizing --
  the same numbers as the path run alone (tests/validate/test_lockstep.py);
- :class:`PathStore` stands in for the DuckDB ``StoreWriter``: the engine's write-ahead rows
  are counted, only the risk rows the summary needs are kept, and nothing touches a disk
  (a path's result file would be thousands of files; the run's own DuckDB gets the summary);
- bars are drawn as matrices in one go and handed over as row views;
- one event loop per chunk of paths, and a per-process cache for anything heavy to load.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from algobotd.brokers import make_broker
from algobotd.clock import SimClock
from algobotd.config import Config
from algobotd.domain import NS_PER_SECOND, BarBatch
from algobotd.engine import Engine
from algobotd.symbols import SymbolIndex
from algobotd.validate import metrics
from algobotd.validate.ensemble_bridge import champion_bundle, engine_config, install, is_ensemble, warmup_bars
from algobotd.book import BookState
from algobotd.validate.scenarios import PathMarket, generate, stack
from algobotd.validate.tape import tape_for

DAILY = 86_400
LOCKSTEP_PATHS = 128  # paths per engine in lockstep (per path: 16 -> 77 paths/s, 32 -> 95, 64 -> 111, 128 -> 124 on one core)


class PathStore:
    """Duck-typed ``StoreWriter`` for paths: same calls, memory only, nothing durable.

    ``keep`` names the tables whose row tuples are retained (the risk records); the others
    are only counted.
    """

    durable = False

    def __init__(self, keep: tuple[str, ...] = ("risk_events", "trading_state")) -> None:
        self.keep = keep
        self.rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in keep}
        self.counts: Counter[str] = Counter()
        self.con = None

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.counts[table] += 1
        if table in self.rows:
            self.rows[table].append(row)

    def add_columns(self, table: str, columns: dict[str, np.ndarray], constants: dict[str, Any] | None = None) -> None:
        self.counts[table] += len(next(iter(columns.values())))

    def update_order(self, row: tuple[Any, ...]) -> None:
        self.counts["order_updates"] += 1

    def maybe_flush(self) -> None:
        pass

    async def barrier(self) -> None:
        pass

    async def flush(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def run(self, fn: Any) -> Any:
        return None

    @property
    def queued(self) -> int:
        return 0


@dataclass(slots=True)
class PathResult:
    scenario: str
    index: int
    total_return: float
    max_drawdown: float
    sharpe: float
    sortino: float
    hit_rate: float
    turnover: float
    trades: int
    breaker_trips: int
    halts: int
    reductions: int
    buy_and_hold_return: float
    final_equity: float
    model_id: str = ""
    equity: np.ndarray | None = field(default=None)  # kept for the first paths only (reports)


def path_config(cfg: Config) -> Config:
    """MC paths are daily bars, whatever the live bar size is."""
    return dataclasses.replace(cfg, feed=dataclasses.replace(cfg.feed, bar_seconds=DAILY))


@dataclass(slots=True)
class Drive:
    """What one engine run left behind: equity per live bar (a column per book when there are
    several), scores (optional), counters."""

    engine: Engine
    store: PathStore
    equity: np.ndarray
    scores: np.ndarray | None


async def drive(cfg: Config, symbols: tuple[str, ...], warm: list[BarBatch], live: list[BarBatch],
                collect_scores: bool = False, bundle: Any = None, tape: bool = True, books: int = 1) -> Drive:
    """The engine on simulated time: warm-up batches (no trading), then live batches.

    With ``model.kind = "ensemble"`` the engine serves ``bundle`` (default: the registry's
    champion, loaded once per process). With ``tape`` (and the momentum baseline on bars where
    every symbol reports) the model's predictions for all bars are computed at once and replayed
    (algobotd/validate/tape.py): the same numbers, a fraction of the time."""
    index = SymbolIndex(symbols)
    clock = SimClock()
    broker = make_broker(cfg, index, clock)
    store = PathStore()
    engine = Engine(engine_config(cfg), index, broker, store, clock, books=books)  # type: ignore[arg-type]  # duck-typed store
    if is_ensemble(cfg):
        install(engine, cfg, bundle if bundle is not None else champion_bundle(cfg.state.dir))
    elif tape and (t := tape_for(engine.model, [*warm, *live])) is not None:
        engine.model = t
    engine.store_market_rows = False  # bars/predictions of a path are never read back
    await broker.connect()
    bar_ns = cfg.feed.bar_seconds * NS_PER_SECOND
    for b in warm:  # the same warm-up as assembly.warm_up, from the run's own history
        clock.advance_to(b.ts + bar_ns)
        engine.warm(b, False)
    pf = engine.portfolio
    book_portfolios = [bk.portfolio for bk in engine.books]
    equity = np.empty(len(live)) if books == 1 else np.empty((len(live), books))
    scores = np.full((len(live), len(symbols)), np.nan) if collect_scores else None
    for t, b in enumerate(live):
        await engine.process(b)
        equity[t] = pf.equity if books == 1 else [p.equity for p in book_portfolios]
        if scores is not None and engine.last_prediction is not None:
            p = engine.last_prediction
            scores[t] = np.where(p.ready, p.score[: len(symbols)], np.nan)
    return Drive(engine, store, equity, scores)


def counts(book: BookState) -> tuple[int, int, int]:
    """(breaker trips, halts, reductions) of one book."""
    return book.breaker_trips, book.halts, book.reductions


def path_result(cfg: Config, scenario: str, index: int, market: PathMarket, equity: np.ndarray, book: BookState,
                model_id: str, keep_curve: bool) -> PathResult:
    initial = cfg.broker.paper.initial_cash
    s = metrics.summarize(equity, initial, cfg.feed.bar_seconds)
    rets = metrics.returns_of(equity, initial)
    w = market.warmup
    bh = float(np.mean(market.close[-1] / market.close[w])) - 1.0  # equal weight, entered at the first close
    trips, halts, reductions = counts(book)
    return PathResult(scenario, index, s["total_return"], s["max_drawdown"], s["sharpe"], s["sortino"],
                      metrics.hit_rate(rets), metrics.turnover(book.traded_value, float(np.mean(equity))),
                      book.fills, trips, halts, reductions, bh,
                      float(equity[-1]), model_id, equity.astype(np.float32) if keep_curve else None)


async def run_path(cfg: Config, scenario: str, seed: int, index: int, n_symbols: int, n_bars: int,
                   keep_curve: bool = False, tape: bool = True) -> PathResult:
    market = generate(scenario, seed, index, n_symbols, n_bars, warmup_bars(cfg))
    batches = market.batches()
    w = market.warmup
    d = await drive(cfg, market.symbols, batches[:w], batches[w:], tape=tape)
    return path_result(cfg, scenario, index, market, d.equity, d.engine.books[0], d.engine.model_id, keep_curve)


async def run_lockstep(cfg: Config, tasks: list[tuple[str, int]], seed: int, n_symbols: int, n_bars: int,
                       keep_curves: int) -> list[PathResult]:
    """The paths of ``tasks`` as one engine, one book per path (needs the score tape)."""
    markets = [generate(sc, seed, i, n_symbols, n_bars, warmup_bars(cfg)) for sc, i in tasks]
    joint = stack(markets)
    batches = joint.batches()
    w = joint.warmup
    d = await drive(cfg, joint.symbols, batches[:w], batches[w:], books=len(tasks))
    equity = d.equity.reshape(len(batches) - w, len(tasks))  # one column per book (also for a single one)
    return [path_result(cfg, sc, i, m, equity[:, k], d.engine.books[k], d.engine.model_id, i < keep_curves)
            for k, ((sc, i), m) in enumerate(zip(tasks, markets))]


def lockstep_allowed(cfg: Config, tape: bool) -> bool:
    """Lockstep needs the score tape (the baseline momentum model): a model that looks across
    symbols (the ensemble's cross-sectional features) would see the other paths."""
    return tape and cfg.model.kind == "baseline"


def run_chunk(cfg: Config, tasks: list[tuple[str, int]], seed: int, n_symbols: int, n_bars: int,
              keep_curves: int, tape: bool = True, lockstep: bool = True) -> list[PathResult]:
    """Worker entry point: a list of (scenario, path index), in lockstep groups of up to
    ``LOCKSTEP_PATHS`` when the model allows it, else one after another, on one loop.

    ``tape=False`` runs the model bar by bar (the reference the tape is tested and benched
    against); ``lockstep=False`` runs every path alone (the reference lockstep is tested against)."""

    async def go() -> list[PathResult]:
        if lockstep and lockstep_allowed(cfg, tape):
            out: list[PathResult] = []
            for k in range(0, len(tasks), LOCKSTEP_PATHS):
                out += await run_lockstep(cfg, tasks[k : k + LOCKSTEP_PATHS], seed, n_symbols, n_bars, keep_curves)
            return out
        return [await run_path(cfg, sc, seed, i, n_symbols, n_bars, i < keep_curves, tape) for sc, i in tasks]

    return asyncio.run(go())


def finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0
