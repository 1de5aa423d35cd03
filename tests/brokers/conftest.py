"""Shared by the broker tests: an in-memory venue whose snapshots the test scripts, and the
real engine and store around it (reconcile and account books, no network)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from algobotd.brokers.base import EventSink
from algobotd.brokers.reconcile import BrokerSnapshot
from algobotd.clock import LiveClock
from algobotd.config import load
from algobotd.domain import BarBatch, OrderRequest
from algobotd.engine import Engine
from algobotd.store.writer import StoreWriter
from algobotd.symbols import SymbolIndex


class Venue:
    """A ReconcilableBroker whose snapshots are scripted by the test."""

    name = "venue"

    def __init__(self) -> None:
        self.snaps: list[BrokerSnapshot] = []
        self.accepting_orders = True
        self.connected = True
        self.canceled_all = 0
        self.followed: list[str] = []
        self.listener: Callable[[bool], None] | None = None

    def set_sink(self, sink: EventSink) -> None:
        self.sink = sink

    def set_connection_listener(self, cb: Callable[[bool], None]) -> None:
        self.listener = cb

    def follow(self, cid: str) -> None:
        self.followed.append(cid)

    async def snapshot(self, since_ns: int) -> BrokerSnapshot:
        return self.snaps.pop(0) if len(self.snaps) > 1 else self.snaps[0]

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def submit(self, orders: list[OrderRequest]) -> None: ...

    async def cancel(self, client_order_id: str) -> None: ...

    async def cancel_all(self) -> None:
        self.canceled_all += 1

    def on_batch(self, batch: BarBatch) -> None: ...


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[Engine, Venue]]:
    cfg = load(None, ['feed.symbols=["AAPL", "MSFT"]'], state_dir=str(tmp_path))
    store = StoreWriter(tmp_path / "s.duckdb", flush_seconds=0.05)
    venue = Venue()
    eng = Engine(cfg, SymbolIndex(["AAPL", "MSFT"]), venue, store, LiveClock())  # type: ignore[arg-type]
    yield eng, venue
    await store.close()


