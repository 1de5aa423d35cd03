"""Monte Carlo lockstep: many paths as the books of one engine give, path by path, exactly what
each path gives when it runs alone -- cash, fills, stops, breakers, halts and equity curves."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest

from algobotd.brokers import make_broker
from algobotd.clock import SimClock
from algobotd.config import load
from algobotd.domain import NS_PER_SECOND, OrderRequest, OrderType, Side, TimeInForce, TradingState
from algobotd.engine import Engine
from algobotd.risk.sizing import TradeStats, VolEstimator, size_targets
from algobotd.symbols import SymbolIndex
from algobotd.validate.paths import PathStore, path_config, run_chunk
from algobotd.validate.scenarios import generate, stack

ALL_SCENARIOS = ("bull", "bear", "sideways", "crash", "recovery", "jump", "bootstrap")


def _rows(paths: list) -> list[tuple]:
    return [tuple(np.asarray(v).tobytes() if isinstance(v, np.ndarray) else v
                  for v in dataclasses.astuple(p)) for p in paths]


@pytest.fixture
def cfg(tmp_path):
    return path_config(load(None, ['model.kind="baseline"'], str(tmp_path / "state")))


# default limits (the position-loss breaker trips), and tight ones so that the drawdown and
# daily-loss breakers -- each book's own high-water mark and day start -- trip as well
@pytest.mark.parametrize("limits", [[], ["risk.max_drawdown_pct=0.02", "risk.daily_loss_pct=0.008"]])
def test_lockstep_paths_equal_the_paths_run_alone(tmp_path, limits: list[str]) -> None:
    cfg = path_config(load(None, ['model.kind="baseline"', *limits], str(tmp_path / "state")))
    tasks = [(sc, i) for i in range(3) for sc in ALL_SCENARIOS]
    alone = run_chunk(cfg, tasks, 5, 12, 200, 99, lockstep=False)
    together = run_chunk(cfg, tasks, 5, 12, 200, 99)  # one engine, 21 books
    # the comparison must cover what books keep apart: trading, stops, breaker trips and halts
    assert sum(p.trades for p in alone) > 100
    assert sum(p.halts for p in alone) >= (4 if limits else 1) and sum(p.breaker_trips for p in alone) > 0
    assert any(p.halts == 0 for p in alone)
    assert _rows(together) == _rows(alone)  # every field, every equity curve, bit for bit


def test_lockstep_groups_do_not_change_results(cfg) -> None:
    tasks = [(sc, i) for i in range(2) for sc in ("crash", "bull", "jump")]
    whole = run_chunk(cfg, tasks, 9, 6, 120, 0)
    split = run_chunk(cfg, tasks[:4], 9, 6, 120, 0) + run_chunk(cfg, tasks[4:], 9, 6, 120, 0)
    assert _rows(whole) == _rows(split)


def _warm_engine(cfg, books: int) -> tuple[Engine, list]:
    markets = [generate("bull", 3, k, 2, 5, 0) for k in range(books)]
    joint = stack(markets)
    index = SymbolIndex(joint.symbols)
    clock = SimClock()
    broker = make_broker(cfg, index, clock)
    engine = Engine(cfg, index, broker, PathStore(), clock, books=books)  # type: ignore[arg-type]
    asyncio.run(broker.connect())
    return engine, joint.batches()


def test_a_halted_book_cancels_and_stops_only_its_own_orders(cfg) -> None:
    engine, batches = _warm_engine(cfg, 2)
    bar_ns = cfg.feed.bar_seconds * NS_PER_SECOND

    async def go() -> None:
        first = batches[0]
        engine.clock.advance_to(first.ts + bar_ns)
        engine.warm(first, False)
        engine.broker.on_batch(first)  # quotes known to the broker and the pre-trade checks
        engine.risk.observe(first, first.ts + bar_ns)
        now = engine.clock.now()
        orders = [OrderRequest(f"ab-0000000{k}-{s}", s, Side.BUY, 10, OrderType.MARKET, None, TimeInForce.DAY, "test", now)
                  for k, s in enumerate(("MC00.0", "MC00.1"), 1)]
        await engine.send(orders)
        assert len(engine.open_orders) == 2
        book0, book1 = engine.books
        change = book1.state.escalate(TradingState.HALTED, "test", "test", now)
        await engine.set_state(change, book1)
        assert [o.request.symbol for o in engine.open_orders.values()] == ["MC00.0"]  # book 1's was cancelled
        assert book1.halts == 1 and book0.halts == 0 and book0.state.state is TradingState.ACTIVE
        cash0, cash1 = book0.portfolio.cash, book1.portfolio.cash
        await engine.process(batches[1])  # book 0's order fills at this bar's open; book 1 stays flat
        assert book0.fills == 1 and book1.fills == 0
        assert book0.portfolio.cash < cash0 and book1.portfolio.cash == cash1
        assert int(book0.portfolio.qty[0]) == 10 and int(book1.portfolio.qty[0]) == 0
        assert engine.portfolio.qty.tolist() == [10, 0, 0, 0]  # the books are views of the engine's arrays
        # every book's identity: cash + positions at the last price = equity
        for bk in engine.books:
            pf = bk.portfolio
            assert pf.equity == pytest.approx(pf.cash + float(np.dot(pf.qty, pf.last)), abs=1e-6)

    asyncio.run(go())


def test_books_need_equal_blocks_of_a_fixed_universe_and_a_per_symbol_model(cfg) -> None:
    index = SymbolIndex(("A.0", "B.0", "A.1"))
    clock = SimClock()
    with pytest.raises(ValueError, match="books"):
        Engine(cfg, index, make_broker(cfg, index, clock), PathStore(), clock, books=2)  # type: ignore[arg-type]
    even = SymbolIndex(("A.0", "A.1"))
    ensemble = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, kind="ensemble"))
    with pytest.raises(ValueError, match="looks across symbols"):
        Engine(ensemble, even, make_broker(cfg, even, clock), PathStore(), clock, books=2)  # type: ignore[arg-type]


def test_sizing_by_book_equals_each_book_sized_alone() -> None:
    rcfg = load().risk
    rng = np.random.default_rng(4)
    books, m = 4, 6
    n = books * m
    vol = VolEstimator(n, 10.0, 2, books)
    alone_vols = [VolEstimator(m, 10.0, 2) for _ in range(books)]
    close = 50.0 * np.exp(np.cumsum(0.02 * rng.standard_normal((30, n)), axis=0))
    spy = 400.0 * np.exp(np.cumsum(0.01 * rng.standard_normal((30, books)), axis=0))
    valid = np.ones(n, bool)
    for t in range(30):
        vol.update(close[t], valid, spy[t].tolist())
        for b, v in enumerate(alone_vols):
            v.update(close[t, b * m : (b + 1) * m], valid[:m], float(spy[t, b]))
    assert vol.market_sigmas().tolist() == [v.market_sigma for v in alone_vols]
    score = rng.standard_normal(n) * 2
    conf = rng.random(n)
    held = rng.integers(-1, 3, n) * 100 * (rng.random(n) < 0.4)
    price = close[-1]
    equity = np.array([1e6, 2.5e5, 8e4, -1.0])  # the last book is bust: nothing new for it
    reduce_only = np.array([False, True, False, False])
    joint = size_targets(score, conf, np.ones(n, bool), 1.0, 0.0, held, price, equity, TradeStats(n), vol, 86_400,
                         rcfg, reduce_only, book_size=m)
    for b in range(books):
        part = slice(b * m, (b + 1) * m)
        one = size_targets(score[part], conf[part], np.ones(m, bool), 1.0, 0.0, held[part], price[part],
                           float(equity[b]), TradeStats(m), alone_vols[b], 86_400, rcfg, bool(reduce_only[b]))
        assert joint.target[part].tolist() == one.target.tolist(), b
        assert np.array_equal(joint.weight[part], one.weight, equal_nan=True), b
        assert joint.scale[b] == one.scale, b  # type: ignore[index]
    assert (joint.target != held).any()  # something was sized
