"""A real engine (paper broker, DuckDB store in a temp dir, simulated clock) driven bar by bar."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np

from algobotd.brokers.paper import PaperBroker
from algobotd.clock import SimClock
from algobotd.config import Config, load
from algobotd.domain import NS_PER_SECOND, BarBatch, OrderRequest, OrderType, Side, TimeInForce
from algobotd.engine import Engine
from algobotd.store.restore import restore
from algobotd.store.writer import StoreWriter
from algobotd.symbols import SymbolIndex

# 2024-01-02 09:30 New York: inside the regular session
T0 = int(dt.datetime(2024, 1, 2, 14, 30, tzinfo=dt.UTC).timestamp()) * NS_PER_SECOND
BAR = 60 * NS_PER_SECOND


def config(tmp: Path, *overrides: str) -> Config:
    # a long model warm-up: the model never trades in these short tests unless asked to
    return load(None, ["model.lookback=500", "model.vol_window=500", "broker.paper.commission=\"none\"",
                       "broker.paper.slippage_bps=0", *overrides], str(tmp / "state"))


def batch(k: int, symbols: tuple[str, ...], close: list[float] | np.ndarray, volume: float = 1e6,
          open_: list[float] | np.ndarray | None = None, spread: float = 0.0) -> BarBatch:
    c = np.asarray(close, dtype=float)
    o = c if open_ is None else np.asarray(open_, dtype=float)
    n = len(symbols)
    return BarBatch(T0 + k * BAR, symbols, o.copy(), np.maximum(o, c), np.minimum(o, c), c.copy(),
                    np.full(n, volume), np.ones(n, dtype=bool), c - spread / 2, c + spread / 2)


class Rig:
    """Engine + paper broker + store, built the way ``assemble`` builds them (restore included)."""

    def __init__(self, tmp: Path, cfg: Config, symbols: tuple[str, ...]) -> None:
        self.tmp, self.cfg, self.names = tmp, cfg, symbols
        self.path = tmp / "rig.duckdb"
        self.store = StoreWriter(self.path, durable=True)
        self.clock = SimClock()
        self.symbols = SymbolIndex(symbols)
        self.broker = PaperBroker(cfg.broker.paper, self.symbols, self.clock.now)
        self.engine = Engine(cfg, self.symbols, self.broker, self.store, self.clock, restore(self.store.con))
        self.k = 0

    async def start(self) -> None:
        await self.broker.connect()

    async def bar(self, close: list[float] | np.ndarray, volume: float = 1e6, open_: list[float] | None = None) -> None:
        await self.engine.process(batch(self.k, self.names, close, volume, open_))
        self.k += 1

    def order(self, symbol: str, signed: int, reason: str = "manual", type_: OrderType = OrderType.MARKET,
              limit: float | None = None) -> OrderRequest:
        self.engine.order_seq += 1
        return OrderRequest(f"ab-{self.engine.order_seq:08d}-{symbol}", symbol, Side.BUY if signed > 0 else Side.SELL,
                            abs(signed), type_, limit, TimeInForce.DAY, reason, self.clock.now())

    async def query(self, sql: str) -> list[tuple]:
        await self.store.flush()
        return self.store.con.execute(sql).fetchall()

    async def close(self) -> None:
        await self.store.close()


def read(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()
