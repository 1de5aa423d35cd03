"""``algobotd run``: the long-running daemon.

Start-up is crash-only (restore from the store, reconcile the venue, warm up, then trade);
SIGTERM/SIGINT stop taking new batches, let the batch in flight finish, flush the store and
return 0.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import Awaitable, Callable

import structlog

from algobotd.assembly import Assembly, assemble, warm_up
from algobotd.brokers.reconcile import Reconciler, start_reconciliation
from algobotd.config import Config, dump
from algobotd.control.adapter import EngineControl
from algobotd.feeds.prices import PriceRelay
from algobotd.ops.runtime import Operations
from algobotd.store.paths import store_path
from algobotd.store.writer import StoreWriter

log = structlog.get_logger(__name__)



class Daemon:
    def __init__(self, cfg: Config, reload_config: Callable[[], Config] | None = None) -> None:
        self.cfg = cfg
        self.reload_config = reload_config  # SIGHUP: re-read the same file and --set overrides
        self.ops: Operations | None = None
        self.stop_requested = asyncio.Event()
        self.a: Assembly | None = None
        self.control: EngineControl | None = None
        self._server = None
        self._in_flight: asyncio.Task[None] | None = None
        self._engine_lock = asyncio.Lock()
        self.reconciler: Reconciler | None = None

    def request_stop(self) -> None:
        log.info("stop requested")
        if self.ops is not None:
            self.ops.stopping()  # STOPPING=1: systemd now waits up to TimeoutStopSec
        self.stop_requested.set()

    def _apply_config(self, cfg: Config) -> None:
        self.cfg = cfg

    async def run(self) -> int:
        cfg = self.cfg
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a reload during start-up must not kill us; ops handles it later
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        store = StoreWriter(store_path(cfg), flush_seconds=cfg.store.flush_seconds, flush_rows=cfg.store.flush_rows)
        run_id = uuid.uuid4().hex[:12]
        try:
            a = self.a = assemble(cfg, store)
            await a.broker.connect()
            # before any order: the venue's orders, fills and positions agree with our books
            self.reconciler = await start_reconciliation(a.engine, a.broker, cfg, self._engine_lock)
            await warm_up(a)
            await a.engine.enforce_state_on_start()  # restarted HALTED: cancel what still rests
            store.add("runs", (run_id, "run", a.clock.now(), None, json.dumps(dump(cfg)), None))
            self.control = EngineControl(a.engine, a.feed, a.mode, self._engine_lock)
            # systemd notify/watchdog, schedule + entry gate, alert outbox, model monitor, SIGHUP
            self.ops = Operations(cfg, a, reload_config=self.reload_config, on_config=self._apply_config)
            self.control.ops = self.ops
            self.ops.reconciler = self.reconciler
            await self._start_control()
            store.start()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
            await self.ops.start()
            self.ops.ready()  # READY=1 only now: reconciled, model warmed up, socket listening
            log.info("trading", mode=a.mode, symbols=len(a.feed.symbols), state=a.engine.state.state.value,
                     equity=round(a.engine.portfolio.equity, 2), store=str(store.path))
            trading = asyncio.create_task(self._trade(a), name="trading")
            stop = asyncio.create_task(self.stop_requested.wait(), name="stop-wait")
            done, _ = await asyncio.wait({trading, stop}, return_when=asyncio.FIRST_COMPLETED)
            if trading in done:
                trading.result()  # a feed that ended (replay) or a crash
                log.info("feed finished")
            else:
                trading.cancel()
                await asyncio.gather(trading, return_exceptions=True)
            stop.cancel()
            if self._in_flight is not None:
                await self._in_flight  # never abandon a batch halfway through its orders
            return 0
        finally:
            await self._shutdown(store)

    async def _trade(self, a: Assembly) -> None:
        ticker = asyncio.create_task(self._risk_ticker(a), name="risk-ticker")
        relay = PriceRelay(self._price_update)
        relay_task = None
        if hasattr(a.feed, "price_listener"):  # live feeds see quotes/trades between bars
            a.feed.price_listener = relay
            relay_task = asyncio.create_task(relay.run(), name="price-relay")
        try:
            async for batch in a.feed.batches(a.restored.resume):
                if self.stop_requested.is_set():
                    break
                self._in_flight = asyncio.ensure_future(self._locked(a.engine.process(batch)))
                await asyncio.shield(self._in_flight)
        finally:
            ticker.cancel()
            if relay_task is not None:
                relay_task.cancel()

    async def _locked(self, work: Awaitable[None]) -> None:
        """Batches, ticks and between-bar price checks never interleave inside the engine."""
        async with self._engine_lock:
            await work

    async def _price_update(self, symbol: str, ts: int, price: float | None, bid: float | None,
                            ask: float | None) -> None:
        assert self.a is not None
        await self._locked(self.a.engine.on_price_update(symbol, ts, price, bid, ask))

    async def _risk_ticker(self, a: Assembly, seconds: float = 1.0) -> None:
        """Breakers that trip without new bars (stale data, broker link), checked between batches."""
        while True:
            await asyncio.sleep(seconds)
            try:
                await self._locked(a.engine.risk_tick())
            except Exception:
                log.exception("risk tick failed")

    async def _start_control(self) -> None:
        try:
            from algobotd.control.server import serve, socket_path
        except ImportError:  # control server not built into this checkout
            log.warning("control server unavailable")
            return
        path = socket_path(self.cfg.control.socket, self.cfg.state_dir)
        c = self.cfg.control
        self._server = await serve(
            self.control, path, mode=0o660 if c.group else 0o600, group=c.group or None,
            allow_uids=tuple(c.allow_uids), allow_groups=tuple(c.allow_groups),
        )
        log.info("control socket", path=str(path))

    async def _shutdown(self, store: StoreWriter) -> None:
        if self.ops is not None:
            await self.ops.close()  # STOPPING=1, scheduler and outbox down before the store closes
        if self._server is not None:
            await self._server.close()
        if self.a is not None:
            a = self.a
            pf = a.engine.portfolio
            now = a.clock.now()
            for p in pf.positions():  # a full snapshot at shutdown, for humans reading the file
                store.add("positions", (now, p.symbol, p.qty, p.avg_cost, p.last_price, p.realized_pnl))
            try:
                if self.reconciler is not None:
                    await self.reconciler.close()
                if a.altdata is not None:  # news stream, pollers, drop-directory watcher
                    await a.altdata.close()
                await a.feed.close()
                await a.broker.close()
                close_model = getattr(a.engine.model, "close", None)  # ensemble: stop training workers
                if close_model is not None:
                    close_model()
            except Exception:
                log.exception("error while closing feed/broker")
        await store.close()
        log.info("stopped", rows_written=store.rows_written)
