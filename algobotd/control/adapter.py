"""The running engine seen through the control protocol (implements ``ControlTarget``)."""

from __future__ import annotations

import asyncio

import datetime as dt
from typing import Any

import numpy as np

from algobotd.control.target import ChangeListener, ControlError
from algobotd.domain import TradingState
from algobotd.engine import Engine
from algobotd.feeds.base import Feed


def iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts / 1e9, tz=dt.UTC).isoformat()


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


class EngineControl:
    def __init__(self, engine: Engine, feed: Feed, mode: str, lock: asyncio.Lock | None = None) -> None:
        self.engine = engine
        self.feed = feed
        self.mode = mode
        # the daemon's engine lock: a halt, flatten or cancel-all never interleaves with a batch
        # whose orders are between their write-ahead and the broker
        self.lock = lock or asyncio.Lock()
        self.retrain_requests = 0
        self.ops: Any = None  # algobotd.ops.runtime.Operations, set by the daemon

    # --- reads -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        e, pf = self.engine, self.engine.portfolio
        cur = e.state.current
        equity = float(pf.equity)
        return {
            "mode": self.mode,
            "trading_state": cur.state.value,
            "trading_state_reason": cur.reason,
            "equity": equity,
            "cash": float(pf.cash),
            # float(): day_start_equity can be a numpy scalar (engine valuation), which the status schema refuses
            "day_pnl": float(equity - e.day_start_equity),
            "day_pnl_pct": float(equity / e.day_start_equity - 1.0) if e.day_start_equity else 0.0,
            "drawdown": float(pf.drawdown),
            "drawdown_limit": float(e.cfg.risk.max_drawdown_pct),  # the breaker that HALTs at it
            "gross_exposure": float(pf.gross_exposure),
            "positions": len(pf.positions()),
            "open_orders": len(e.open_orders),
            "last_bar_ts": iso(e.last_batch.ts) if e.last_batch is not None else None,
            "feed_connected": bool(self.feed.connected),
            "broker_connected": bool(e.broker.connected),
            "model_id": e.model.model_id,  # follows a hot swap
            # ensemble: weights, recent IC, confidence, training/loading (models/ensemble.py)
            "model": e.model.status() if hasattr(e.model, "status") else None,
            "bar_seconds": e.cfg.feed.bar_seconds,
            # engine clock minus the last bar's close: meaningful under a SimClock too
            "feed_lag_s": (e.clock.now() - e.last_batch.ts - e.bar_ns) / 1e9 if e.last_batch is not None else None,
            "trading_state_since": iso(cur.ts) if cur.ts else None,
            "trading_state_by": cur.actor,
            # scheduler jobs, alert backlog, model monitor, systemd, last reload (issue 8)
            "ops": self.ops.status() if self.ops is not None else None,
            # alternative-data sources: freshness, failures, drops (algobotd/altdata/hub.py)
            "altdata": e.alt_hub.status(e.clock.now()) if e.alt_hub is not None else None,
        }

    def positions(self) -> list[dict[str, Any]]:
        stops = self.engine.stop_levels()  # symbol -> (soft, hard) stop prices from the risk layer
        return [
            {"symbol": p.symbol, "qty": int(p.qty), "avg_cost": float(p.avg_cost), "last": _num(p.last_price),
             "market_value": _num(p.market_value), "unrealized_pnl": _num(p.unrealized_pnl),
             "soft_stop": _num(stops[p.symbol][0]) if p.symbol in stops else None,
             "hard_stop": _num(stops[p.symbol][1]) if p.symbol in stops else None}
            for p in self.engine.portfolio.positions()
        ]

    def orders(self) -> list[dict[str, Any]]:
        return [
            {"client_order_id": o.request.client_order_id, "symbol": o.request.symbol,
             "side": o.request.side.value, "qty": o.request.qty, "filled_qty": o.filled,
             "type": o.request.type.value, "limit_price": o.request.limit_price,
             "status": o.status.value, "ts": iso(o.request.created_ts)}
            for o in self.engine.open_orders.values()
        ]

    def predictions(self) -> list[dict[str, Any]]:
        pred = self.engine.last_prediction
        if pred is None:
            return []
        out = []
        for i in np.flatnonzero(pred.ready).tolist():
            out.append({"symbol": self.engine.symbols.symbols[i], "prediction": float(pred.score[i]),
                        "confidence": float(pred.confidence[i]), "weights": pred.weights})
        return out

    def risk(self) -> dict[str, Any]:
        e = self.engine
        cur = e.state.current
        return {
            "trading_state": cur.state.value, "reason": cur.reason, "since": iso(cur.ts) if cur.ts else None,
            "by": cur.actor,
            "breakers": e.breaker_status(),  # every breaker: value, threshold, tripped (algobotd/risk/hooks.py)
        }

    def equity_curve(self, limit: int = 2000) -> list[dict[str, Any]]:
        rows = list(self.engine.equity_curve)[-limit:]
        return [{"ts": iso(t), "equity": float(eq), "cash": float(c), "drawdown": float(d)} for t, eq, c, d in rows]

    def events(self, limit: int = 200) -> list[dict[str, Any]]:
        rows = list(self.engine.events)[-limit:]
        return [{"ts": iso(r["ts"]), "kind": r["kind"], "message": r["message"]} for r in rows]

    # --- state changes -----------------------------------------------------------------------

    async def halt(self, reason: str, actor: str) -> dict[str, Any]:
        return await self._escalate(TradingState.HALTED, reason or "operator halt", actor)

    async def reduce(self, reason: str, actor: str) -> dict[str, Any]:
        return await self._escalate(TradingState.REDUCING, reason or "operator reduce", actor)

    async def _escalate(self, state: TradingState, reason: str, actor: str) -> dict[str, Any]:
        e = self.engine
        async with self.lock:
            changed = await e.set_state(e.state.escalate(state, reason, actor, e.clock.now()))
        return {"trading_state": e.state.state.value, "changed": changed}

    async def resume(self, actor: str) -> dict[str, Any]:
        e = self.engine
        async with self.lock:
            changed = await e.set_state(e.state.resume(actor, e.clock.now()))
        return {"trading_state": e.state.state.value, "changed": changed}

    async def flatten(self, actor: str) -> dict[str, Any]:
        async with self.lock:
            orders = await self.engine.flatten(actor)
        return {"orders": [o.client_order_id for o in orders]}

    async def cancel_all(self, actor: str) -> dict[str, Any]:
        n = len(self.engine.open_orders)
        async with self.lock:
            await self.engine.broker.cancel_all()
        self.engine.record_event(self.engine.clock.now(), "cancel_all", f"cancel all by {actor}: {n} open orders")
        return {"cancel_requested": n}

    async def ingest(self, lines: list[Any], actor: str) -> dict[str, Any]:
        hub = self.engine.alt_hub
        if hub is None:
            raise ControlError("unavailable", "alternative data is off (altdata.enabled = false)")
        from algobotd.altdata.social import ingest_lines_async  # the adapter stays importable without altdata

        res = await ingest_lines_async(hub, list(lines), where=actor)
        return res.to_json()

    async def retrain(self, actor: str) -> dict[str, Any]:
        # the ops monitor's retrain controller, once the model layer supplies a Retrainer
        if self.ops is not None and self.ops.retrains.retrainer is not None:
            started = self.ops.retrains.trigger(f"requested by {actor}", force=True)
            return {"started": started, "running": self.ops.retrains.running}
        # The baseline has nothing to train; the model issue's trainer hooks in here.
        raise ControlError("unavailable", f"model {self.engine.model_id} has no training step")

    def add_change_listener(self, listener: ChangeListener) -> None:
        self.engine.listeners.append(listener)

    def remove_change_listener(self, listener: ChangeListener) -> None:
        if listener in self.engine.listeners:
            self.engine.listeners.remove(listener)
