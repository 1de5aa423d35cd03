"""Put feed, broker, clock, store and engine together: the one start-up path.

``algobotd run`` and ``algobotd backtest`` both call :func:`assemble` and :func:`warm_up`;
they differ only in the store's durability and in what they do with the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from algobotd.altdata.runtime import AltData
from algobotd.altdata.service import build_altdata
from algobotd.brokers import make_broker, trading_mode
from algobotd.brokers.account import apply_restored_cash
from algobotd.brokers.base import Broker
from algobotd.clock import Clock, LiveClock, SimClock
from algobotd.config import Config
from algobotd.engine import Engine
from algobotd.feeds import is_simulated, make_feed
from algobotd.feeds.base import Feed
from algobotd.store.restore import RestoredState, recent_batches, restore
from algobotd.store.writer import StoreWriter
from algobotd.symbols import SymbolIndex

log = structlog.get_logger(__name__)


@dataclass
class Assembly:
    cfg: Config
    feed: Feed
    broker: Broker
    clock: Clock
    store: StoreWriter
    engine: Engine
    restored: RestoredState
    mode: str
    altdata: AltData | None = None  # news / social / options sources (algobotd/altdata)


def assemble(cfg: Config, store: StoreWriter, replay_path: str | None = None) -> Assembly:
    restored = restore(store.con)
    feed = make_feed(cfg, replay_path)
    symbols = SymbolIndex(feed.symbols)
    clock: Clock = SimClock() if is_simulated(cfg, replay_path) else LiveClock()
    broker = make_broker(cfg, symbols, clock)
    engine = Engine(cfg, symbols, broker, store, clock, restored)
    apply_restored_cash(engine, restored)  # books adopted from a venue account: its cash, not initial_cash
    # news / social / options events ride the bar batches (the engine attaches them, algobotd/altdata);
    # pollers and the social drop directory only with a durable (daemon) store, never in a backtest
    altdata = build_altdata(cfg, feed, store, watch=store.durable)
    engine.alt_hub = altdata.hub if altdata is not None else None
    restore_fills = getattr(broker, "restore_fills", None)
    if restore_fills is not None:  # IB: corrections of executions booked before a restart
        restore_fills(restored.fills)
    restore_open_orders = getattr(broker, "restore", None)
    if restore_open_orders is not None and restored.open_orders:
        # the paper venue's book lives in our store; real venues are reconciled instead
        restore_open_orders(restored.open_orders)
    return Assembly(cfg, feed, broker, clock, store, engine, restored, trading_mode(cfg), altdata)


async def warm_up(a: Assembly) -> int:
    """Feed history to the model: stored bars after a restart, the feed's history on a first start."""
    # an ensemble with no model yet trains on its warm-up history: it asks for enough of it
    n = max(a.cfg.feed.warmup_bars, getattr(a.engine.model, "history_wanted", 0))
    if a.restored.resume is not None:
        batches = recent_batches(a.store.con, a.feed.symbols, n)
        store_bars = False
    else:
        batches = await a.feed.history(n, None)
        store_bars = True
    if a.altdata is not None:  # news history for the same window; live sources start here
        await a.altdata.warm(batches, a.engine.bar_ns)
    for b in batches:
        if isinstance(a.clock, SimClock):
            a.clock.advance_to(b.ts + a.engine.bar_ns)
        a.engine.warm(b, store_bars)
    log.info("warm-up done", bars=len(batches), source="store" if not store_bars else "feed")
    return len(batches)
