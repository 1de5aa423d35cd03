"""Alerts with a durable outbox in the ``alerts`` table.

Producers (the engine, risk, the monitor) never talk to a channel: they enqueue a row with
``status = 'pending'`` through the store writer (:func:`alert_row`), which costs them a list
append. The :class:`Outbox` task then

1. routes: a pending row with an empty ``channel`` becomes one delivery row per routed
   channel (``<alert_id>#<channel>``, ``ts`` = when routed), and itself ``routed`` /
   ``unrouted``; a producer may also write a row with ``channel`` set to bypass routing;
2. delivers due rows (``next_attempt`` passed), each channel in order, channels in parallel;
   a delivered row is marked ``sent`` at once, so a restart never sends it again;
3. retries failures with exponential backoff until delivered, or ``expired`` after
   ``alerts.expire_seconds``; a permanent failure (HTTP 4xx, SMTP 5xx) is ``failed``.

Deduplication is the primary key: the same ``alert_id`` is stored (and so sent) once; ids
are deterministic (:func:`alert_id`), so a replayed event after a restart is the same alert.
On top, the same kind + level + message routed again within ``alerts.dedup_seconds`` is
marked ``duplicate`` (a condition re-reported on every pass pages nobody twice).
Everything touching DuckDB runs on the writer's thread: the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import duckdb
import structlog

from algobotd.config import ALERT_LEVELS, AlertsConfig
from algobotd.ops.alert_channels import Alert, Channel, DeliveryError, make_channel
from algobotd.ops.logging import register_secret
from algobotd.store.writer import StoreWriter

log = structlog.get_logger(__name__)

LEVEL_RANK = {name: i for i, name in enumerate(ALERT_LEVELS)}
# every fill is its own trade (two fills can read alike): never folded by the text window
DISTINCT_KINDS = frozenset({"fill"})
BATCH = 200  # deliveries per pass: a large backlog drains over a few passes


def alert_id(kind: str, ts_ns: int, message: str) -> str:
    return hashlib.sha256(f"{kind}|{ts_ns}|{message}".encode()).hexdigest()[:24]


def alert_row(kind: str, level: str, message: str, *, raised_ns: int | None = None, dedup_key: str | None = None,
              channel: str = "", **fields: Any) -> tuple[Any, ...]:
    """A pending outbox row for ``store.add("alerts", ...)``; ``fields`` go into the JSON payload."""
    if level not in LEVEL_RANK:
        raise ValueError(f"alert level must be one of {', '.join(ALERT_LEVELS)}, got {level!r}")
    raised = time.time_ns() if raised_ns is None else raised_ns
    aid = dedup_key or alert_id(kind, raised, message)
    payload = json.dumps({"message": message, **fields}, default=str)
    return (aid, raised, kind, level, channel, payload, "pending", 0, None, None)


def _utc(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).replace(tzinfo=None)


class Router:
    """Which channels an alert goes to: every route whose kinds, level and confidence match."""

    def __init__(self, cfg: AlertsConfig) -> None:
        self.routes = cfg.routes

    def channels(self, kind: str, level: str, payload: Mapping[str, Any]) -> list[str]:
        rank = LEVEL_RANK.get(level, 0)
        confidence = payload.get("confidence")
        out: list[str] = []
        for r in self.routes:
            if r.kinds and kind not in r.kinds:
                continue
            if rank < LEVEL_RANK[r.min_level]:
                continue
            if r.min_confidence > 0 and not (isinstance(confidence, (int, float)) and confidence >= r.min_confidence):
                continue
            out.extend(c for c in r.channels if c not in out)
        return out


class Outbox:
    def __init__(self, store: StoreWriter, cfg: AlertsConfig, env: Mapping[str, str] | None = None,
                 wall_ns: Callable[[], int] = time.time_ns) -> None:
        self.store = store
        self.env = os.environ if env is None else env
        self.wall_ns = wall_ns
        self.cfg = cfg
        self.router = Router(cfg)
        self.channels: dict[str, Channel] = {}
        self._build_channels(cfg)
        self._wake = asyncio.Event()
        self.counts: dict[str, int] = {}
        self._recent: dict[tuple[str, str, str], int] = {}  # (kind, level, message) -> when last routed
        self.delivered = 0
        self.last_error: str | None = None

    def _build_channels(self, cfg: AlertsConfig) -> None:
        for c in cfg.channels:  # webhook URLs and credentials must never show up in a log line
            for var in (c.url_env, c.auth_env, c.password_env):
                if var:
                    register_secret(self.env.get(var))
            if c.format in ("slack", "discord") or c.kind == "sms":
                register_secret(c.url)  # a Slack/Discord URL is its own credential
        self.channels = {c.name: make_channel(c, self.env, cfg.timeout_seconds) for c in cfg.channels}

    async def configure(self, cfg: AlertsConfig) -> None:
        """Reload: new routes and channels for everything not yet delivered."""
        old = self.channels
        self.cfg, self.router = cfg, Router(cfg)
        self._build_channels(cfg)
        for ch in old.values():
            await ch.close()
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            if self.cfg.enabled:
                try:
                    await self.pump()
                except Exception as exc:  # a bad row or a DB hiccup must not end alerting
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.exception("alert outbox pass failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.cfg.poll_seconds)
            except TimeoutError:
                pass
            self._wake.clear()

    async def pump(self) -> int:
        """One pass: route, expire, deliver what is due. Returns the number delivered."""
        now = self.wall_ns()
        await self.store.run(lambda con: self._route(con, now))
        due = await self.store.run(lambda con: self._due(con, now))
        by_channel: dict[str, list[Alert]] = {}
        for a in due:
            by_channel.setdefault(a.channel, []).append(a)
        results = await asyncio.gather(*(self._deliver_channel(name, alerts) for name, alerts in by_channel.items()))
        self.counts = await self.store.run(self._counts)
        return sum(results)

    # --- on the writer thread -----------------------------------------------------------------

    def _route(self, con: duckdb.DuckDBPyConnection, now: int) -> None:
        rows = con.execute(
            "SELECT alert_id, ts, kind, level, payload FROM alerts "
            "WHERE status = 'pending' AND coalesce(channel, '') = '' ORDER BY ts LIMIT 1000"
        ).fetchall()
        if rows:
            con.execute("BEGIN TRANSACTION")
            try:
                for aid, ts, kind, level, payload in rows:
                    try:
                        body = json.loads(payload or "{}")
                    except json.JSONDecodeError:
                        body = {"message": str(payload)}
                    body.setdefault("raised_at", ts.isoformat() if ts else None)
                    if self._repeat(kind, level, str(body.get("message", "")), now):
                        con.execute("UPDATE alerts SET status = 'duplicate' WHERE alert_id = ?", [aid])
                        continue
                    targets = self.router.channels(kind, level, body)
                    for ch in targets:
                        con.execute("INSERT OR IGNORE INTO alerts (alert_id, ts, kind, level, channel, payload, status, attempts, "
                                    "next_attempt) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?)",
                                    [f"{aid}#{ch}", _utc(now), kind, level, ch, json.dumps(body, default=str), _utc(now)])
                    con.execute("UPDATE alerts SET status = ? WHERE alert_id = ?",
                                ["routed" if targets else "unrouted", aid])
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        expiry = _utc(now - int(self.cfg.expire_seconds * 1e9))
        con.execute("UPDATE alerts SET status = 'expired' WHERE status = 'pending' AND coalesce(channel, '') <> '' "
                    "AND ts < ?", [expiry])

    def _repeat(self, kind: str, level: str, message: str, now: int) -> bool:
        """The same alert text again within ``dedup_seconds`` (a condition re-reported every pass)."""
        if kind in DISTINCT_KINDS:
            return False
        key = (kind, level, message)
        last = self._recent.get(key)
        window = int(self.cfg.dedup_seconds * 1e9)
        if last is not None and now - last < window:
            return True
        self._recent[key] = now
        if len(self._recent) > 10_000:  # forget what is outside the window
            self._recent = {k: t for k, t in self._recent.items() if now - t < window}
        return False

    def _due(self, con: duckdb.DuckDBPyConnection, now: int) -> list[Alert]:
        rows = con.execute(
            "SELECT alert_id, ts, kind, level, channel, payload FROM alerts WHERE status = 'pending' "
            "AND coalesce(channel, '') <> '' AND (next_attempt IS NULL OR next_attempt <= ?) "
            "ORDER BY ts, alert_id LIMIT ?", [_utc(now), BATCH]
        ).fetchall()
        out = []
        for aid, ts, kind, level, channel, payload in rows:
            try:
                body = json.loads(payload or "{}")
            except json.JSONDecodeError:
                body = {"message": str(payload)}
            out.append(Alert(aid, ts, kind, level, channel, body if isinstance(body, dict) else {"message": body}))
        return out

    @staticmethod
    def _counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
        """Delivery rows by status, plus ``unrouted_pending``: raised alerts not yet routed."""
        counts = {s: int(n) for s, n in con.execute(
            "SELECT status, count(*) FROM alerts WHERE coalesce(channel, '') <> '' GROUP BY status").fetchall()}
        counts["unrouted_pending"] = int(con.execute(
            "SELECT count(*) FROM alerts WHERE coalesce(channel, '') = '' AND status = 'pending'").fetchone()[0])
        return counts

    # --- delivery ------------------------------------------------------------------------------

    async def _deliver_channel(self, name: str, alerts: list[Alert]) -> int:
        channel = self.channels.get(name)
        delivered = 0
        for a in alerts:
            if channel is None:
                # the channel left the config (reload): keep the row; it expires unless it comes back
                await self._reschedule(a, f"no channel named {name!r} configured", permanent=False)
                continue
            try:
                await asyncio.wait_for(channel.send(a), self.cfg.timeout_seconds * 2)
            except (DeliveryError, TimeoutError) as exc:
                permanent = isinstance(exc, DeliveryError) and exc.permanent
                await self._reschedule(a, str(exc) or type(exc).__name__, permanent)
                if not permanent:
                    break  # keep the channel's order; the rest waits for the next pass
                continue
            sent_at = _utc(self.wall_ns())
            await self.store.run(lambda con, aid=a.alert_id: con.execute(
                "UPDATE alerts SET status = 'sent', attempts = attempts + 1, sent_at = ? WHERE alert_id = ?",
                [sent_at, aid]))
            delivered += 1
            self.delivered += 1
            log.info("alert delivered", alert_id=a.alert_id, channel=name, kind=a.kind, level=a.level)
        return delivered

    async def _reschedule(self, a: Alert, error: str, permanent: bool) -> None:
        self.last_error = f"{a.channel}: {error}"

        def update(con: duckdb.DuckDBPyConnection) -> int:
            attempts = int(con.execute("SELECT attempts FROM alerts WHERE alert_id = ?", [a.alert_id]).fetchone()[0]) + 1
            delay = min(self.cfg.retry_max_seconds, self.cfg.retry_base_seconds * 2 ** (attempts - 1))
            con.execute("UPDATE alerts SET status = ?, attempts = ?, next_attempt = ? WHERE alert_id = ?",
                        ["failed" if permanent else "pending", attempts, _utc(self.wall_ns() + int(delay * 1e9)),
                         a.alert_id])
            return attempts

        attempts = await self.store.run(update)
        log.warning("alert delivery failed", alert_id=a.alert_id, channel=a.channel, error=error,
                    attempts=attempts, permanent=permanent)

    def status(self) -> dict[str, Any]:
        backlog = self.counts.get("pending", 0) + self.counts.get("unrouted_pending", 0)
        return {"enabled": self.cfg.enabled, "channels": sorted(self.channels), "backlog": backlog,
                "by_status": dict(self.counts), "delivered": self.delivered, "last_error": self.last_error}

    async def drain(self, seconds: float) -> int:
        """A last delivery pass at shutdown, bounded: what is left stays pending for the next start."""
        if not self.cfg.enabled:
            return 0
        try:
            await self.store.flush()  # alerts raised just now are still in the writer's buffers
            return await asyncio.wait_for(self.pump(), seconds)
        except Exception as exc:  # includes the timeout: nothing here may hold up the stop
            log.warning("alert drain at shutdown incomplete", error=f"{type(exc).__name__}: {exc}")
            return 0

    async def close(self) -> None:
        for ch in self.channels.values():
            await ch.close()


# --- engine events -> alerts ------------------------------------------------------------------

# Only kinds nobody else writes to the outbox: the risk layer already enqueues its own
# ``risk_state`` (breaker trips, halts) and ``risk_denial`` alerts, reconciliation ``reconcile``.
EVENT_LEVELS = {"fill": "info", "flatten": "warning", "reject": "warning", "cancel_all": "warning",
                "retrain": "warning", "session": "info"}


def event_alert(event: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The outbox row for one engine event (``Engine.events`` entry); None for kinds not alerted."""
    kind = str(event.get("kind", ""))
    level = EVENT_LEVELS.get(kind)
    if level is None:
        return None
    message = str(event.get("message", ""))
    ts = int(event.get("ts") or 0)
    extra = {k: v for k, v in event.items() if k not in ("kind", "message", "ts")}
    # the id hashes the event's own timestamp, so the same event replayed is the same alert
    return alert_row(kind, level, message, dedup_key=alert_id(kind, ts, message), event_ts=ts, **extra)
