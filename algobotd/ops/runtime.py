"""The daemon's operations side in one object: systemd, schedule, alerts, monitoring, reload.

:class:`Operations` is created by the daemon after reconciliation and model warm-up, inside
the running loop. It owns the background tasks (watchdog, STATUS refresh, alert outbox),
the APScheduler jobs, the engine's entry gate, the engine-event -> alert bridge and SIGHUP.
Everything it does to the engine is cheap and synchronous (set a gate, append a row) or
runs in its own task, so the trading loop never waits for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from algobotd.assembly import Assembly
from algobotd.config import Config, ConfigError
from algobotd.control.adapter import iso
from algobotd.feeds import is_simulated
from algobotd.ops.alerts import Outbox, event_alert
from algobotd.ops.monitor import FeatureSource, Monitor, RetrainController, Retrainer, StoreBarFeatures
from algobotd.ops.scheduler import Hooks, MarketCalendar, Scheduler, entry_gate
from algobotd.ops.systemd import Notifier

log = structlog.get_logger(__name__)

# Sections a SIGHUP applies in place; the rest (feed, broker, store, state dir, socket, model
# kind) shape objects built at start-up and need a restart: a change there is logged.
RELOADABLE = ("risk", "alerts", "schedule", "monitor", "logging")
DRAIN_SECONDS = 5.0  # bounded: well inside the unit's TimeoutStopSec


def merge_reload(old: Config, new: Config) -> tuple[Config, list[str], list[str]]:
    """(config in force after the reload, reloadable sections changed, sections needing a restart)."""
    applied = [s for s in RELOADABLE if getattr(old, s) != getattr(new, s)]
    restart = [f.name for f in dataclasses.fields(Config) if f.name not in RELOADABLE
               and getattr(old, f.name) != getattr(new, f.name)]
    merged = dataclasses.replace(old, **{s: getattr(new, s) for s in RELOADABLE})
    return merged, applied, restart


def apply_risk_limits(engine: Any, cfg: Config) -> None:
    """Point the risk layer's parts at the new ``[risk]`` limits (they read them on every check)."""
    risk = getattr(engine, "risk", None)
    if risk is None:
        return
    reconfigure = getattr(risk, "reconfigure", None)
    if reconfigure is not None:  # the risk layer's own way, when it has one
        reconfigure(cfg)
        return
    risk.cfg, risk.rcfg = cfg, cfg.risk
    for part in ("breakers", "stops", "pretrade"):
        obj = getattr(risk, part, None)
        if obj is not None and hasattr(obj, "cfg"):
            obj.cfg = cfg.risk
    pretrade = getattr(risk, "pretrade", None)
    if pretrade is not None and hasattr(pretrade, "restricted"):
        pretrade.restricted = frozenset(cfg.risk.restricted_symbols)


def calendar_for(cfg: Config) -> MarketCalendar:
    try:
        return MarketCalendar(cfg.schedule.calendar)
    except ValueError as exc:
        raise ConfigError("schedule.calendar", str(exc)) from None


class Operations:
    def __init__(self, cfg: Config, a: Assembly, *, reload_config: Callable[[], Config] | None = None,
                 on_config: Callable[[Config], None] = lambda cfg: None, retrainer: Retrainer | None = None,
                 features: FeatureSource | None = None, env: Mapping[str, str] | None = None) -> None:
        self.cfg = cfg
        self.a = a
        self.reload_config = reload_config
        self.on_config = on_config
        self.notifier = Notifier(env)
        self.live = not is_simulated(cfg, None)
        self.calendar = calendar_for(cfg)
        a.engine.entry_gate = entry_gate(cfg.schedule, self.calendar, self.live)
        self.outbox = Outbox(a.store, cfg.alerts, env)
        # the model layer may hang its Retrainer / FeatureSource on the engine (see ops/monitor.py)
        retrainer = retrainer or getattr(a.engine, "retrainer", None)
        features = features or getattr(a.engine, "feature_source", None) or StoreBarFeatures(a.store, a.clock.now())
        self.retrains = RetrainController(retrainer, cfg.monitor.retrain_cooldown_seconds, on_event=self._event)
        self.monitor = Monitor(a.store, cfg.monitor, cfg.feed.bar_seconds, self.retrains, features)
        self.scheduler = Scheduler(cfg.schedule, Hooks(
            session_open=self.session_open, session_close=self.session_close, pre_open=self.pre_open,
            nightly_retrain=self.nightly_retrain, reconcile=self.reconcile, monitor=self.run_monitor), self.calendar)
        self.reconciler: Any = None  # a brokers.reconcile.Reconciler, when the daemon has one
        self.last_reload: dict[str, Any] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reload_lock = asyncio.Lock()
        self._last_event: object = None

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.scheduler.start()
        self._tasks = [
            loop.create_task(self.notifier.watchdog_loop(), name="sd-watchdog"),
            loop.create_task(self._status_loop(), name="sd-status"),
            loop.create_task(self.outbox.run(), name="alert-outbox"),
        ]
        self.a.engine.listeners.append(self._on_engine_change)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)

    def ready(self) -> None:
        """After reconciliation and model load: systemd may now consider the unit started."""
        self.notifier.ready(self.status_line())
        log.info("ready", systemd=self.notifier.enabled, watchdog_seconds=self.notifier.watchdog_seconds)

    def stopping(self) -> None:
        self.notifier.stopping()

    async def close(self) -> None:
        self.notifier.stopping()
        try:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # removal restores the default: terminate
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        self.scheduler.shutdown()
        if self._on_engine_change in self.a.engine.listeners:
            self.a.engine.listeners.remove(self._on_engine_change)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.outbox.drain(DRAIN_SECONDS)  # the last fills and the halt, if the endpoint is up
        if self.retrains.task is not None:
            self.retrains.task.cancel()
            await asyncio.gather(self.retrains.task, return_exceptions=True)
        await self.outbox.close()
        self.notifier.close()

    # --- systemd STATUS -----------------------------------------------------------------------

    def status_line(self) -> str:
        e = self.a.engine
        last = iso(e.last_batch.ts) if e.last_batch is not None else "none"
        return (f"{e.state.state.value} equity={e.portfolio.equity:,.2f} last_bar={last} "
                f"alerts_backlog={self.outbox.counts.get('pending', 0)}")

    async def _status_loop(self) -> None:
        if not self.notifier.enabled:
            return
        while True:
            await asyncio.sleep(self.cfg.schedule.status_seconds)
            self.notifier.status(self.status_line())

    # --- engine events -> alert outbox --------------------------------------------------------

    def _on_engine_change(self, topic: str) -> None:
        if topic != "events" or not self.a.engine.events:
            return
        if not (self.cfg.alerts.enabled and self.cfg.alerts.from_events and self.cfg.alerts.routes):
            return  # nothing would be routed: no row per fill in a store nobody reads
        ev = self.a.engine.events[-1]
        if ev is self._last_event:
            return
        self._last_event = ev
        row = event_alert(ev)
        if row is not None:
            self.a.store.add("alerts", row)  # an append: the outbox task does the rest
            self.outbox.wake()

    def _event(self, kind: str, message: str) -> None:
        e = self.a.engine
        e.record_event(e.clock.now(), kind, message)

    # --- scheduled jobs -----------------------------------------------------------------------

    async def session_open(self) -> dict[str, Any]:
        """Daily reset at the session start: the daily-loss breaker measures from here."""
        e = self.a.engine
        e.day_start_equity = float(e.portfolio.equity)
        reset = getattr(e.risk, "reset_daily", None) if hasattr(e, "risk") else None
        if reset is not None:
            reset()
        self._event("session", f"session open: daily baseline {e.day_start_equity:,.2f}")
        return {"day_start_equity": e.day_start_equity}

    async def session_close(self) -> dict[str, Any]:
        self._event("session", "session closed: no new entries until the next open")
        return {"equity": float(self.a.engine.portfolio.equity)}

    async def pre_open(self) -> dict[str, Any]:
        """Warm-up before the open: make sure the venue link is up while there is time to fix it."""
        broker = self.a.broker
        if not broker.connected:
            await broker.connect()
        return {"broker_connected": bool(broker.connected), "feed_connected": bool(self.a.feed.connected)}

    async def nightly_retrain(self) -> dict[str, Any]:
        started = self.retrains.trigger("nightly retrain after the close", force=True)
        return {"started": started}

    async def reconcile(self) -> str:
        if self.reconciler is not None:
            return (await self.reconciler.run_once()).summary()
        if hasattr(self.a.broker, "snapshot"):
            from algobotd.brokers.reconcile import reconcile

            return (await reconcile(self.a.engine, self.a.broker)).summary()
        return "nothing to reconcile: the paper venue's book is our own store"

    async def run_monitor(self) -> dict[str, Any]:
        if not self.cfg.monitor.enabled:
            return {"enabled": False}
        return await self.monitor.run_once()

    # --- SIGHUP reload ------------------------------------------------------------------------

    def request_reload(self) -> None:
        log.info("reload requested (SIGHUP)")
        self._tasks.append(asyncio.get_running_loop().create_task(self.reload(), name="reload"))

    async def reload(self) -> dict[str, Any]:
        async with self._reload_lock:
            self.notifier.reloading()
            try:
                result = await self._reload()
            finally:
                self.notifier.ready(self.status_line())  # READY=1 ends RELOADING, also after a rejection
            self.last_reload = result
            return result

    async def _reload(self) -> dict[str, Any]:
        if self.reload_config is None:
            return {"ok": False, "error": "no config source to reload from"}
        try:
            new = self.reload_config()
            calendar = calendar_for(new) if new.schedule.calendar != self.cfg.schedule.calendar else self.calendar
        except ConfigError as exc:
            log.error("config reload rejected: the old config stays in force", error=str(exc))
            return {"ok": False, "error": str(exc)}
        merged, applied, restart = merge_reload(self.cfg, new)
        self.cfg = merged
        e = self.a.engine
        e.cfg = merged
        apply_risk_limits(e, merged)
        self.calendar = calendar
        self.scheduler.calendar = calendar
        e.entry_gate = entry_gate(merged.schedule, calendar, self.live)
        await self.outbox.configure(merged.alerts)
        self.scheduler.reschedule(merged.schedule)
        self.monitor.configure(merged.monitor)
        logging.getLogger().setLevel(merged.logging.level.upper())
        self.on_config(merged)
        if restart:
            log.warning("config reloaded; these sections change only on restart", sections=restart)
        log.info("config reloaded", applied=applied)
        return {"ok": True, "applied": applied, "restart_required": restart}

    # --- status for the control socket --------------------------------------------------------

    def status(self) -> dict[str, Any]:
        now = self.a.engine.clock.now()
        return {
            "systemd": {"notify": self.notifier.enabled, "watchdog_seconds": self.notifier.watchdog_seconds},
            "calendar": self.calendar.name,
            "market_open": self.calendar.is_open(now),
            "entries_allowed": bool(self.a.engine.entry_gate(now)),
            "jobs": self.scheduler.status(),
            "alerts": self.outbox.status(),
            "monitor": self.monitor.status(),
            "last_reload": self.last_reload,
            "pid": os.getpid(),
        }
