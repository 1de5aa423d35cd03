"""Alpaca pieces shared by the broker, the feed and check-broker: keys, REST hygiene, mapping.

alpaca-py reads no environment itself, sets no socket timeout on its ``requests`` session and
raises its own ``APIError``; these helpers give every Alpaca call the same keys, a timeout, and
one ``BrokerError`` with a code (``auth``, ``permission``, ``rejected``, ``venue``, ``unreachable``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
import structlog
from alpaca.common.exceptions import APIError
from alpaca.trading.models import Order as AOrder
from requests.adapters import HTTPAdapter

from algobotd.brokers.base import BrokerError, backoff_seconds
from algobotd.brokers.reconcile import BrokerOrder
from algobotd.config import AlpacaConfig, ConfigError, load_credentials
from algobotd.domain import OrderStatus, OrderType, Side, TimeInForce

T = TypeVar("T")
log = structlog.get_logger(__name__)

KEY_ENV, SECRET_ENV = "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"
HTTP_TIMEOUT = 10.0

_STATUS = {
    "new": OrderStatus.ACCEPTED, "accepted": OrderStatus.ACCEPTED, "pending_new": OrderStatus.ACCEPTED,
    "accepted_for_bidding": OrderStatus.ACCEPTED, "held": OrderStatus.ACCEPTED, "calculated": OrderStatus.ACCEPTED,
    "pending_cancel": OrderStatus.ACCEPTED, "pending_replace": OrderStatus.ACCEPTED, "done_for_day": OrderStatus.ACCEPTED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED, "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED, "expired": OrderStatus.EXPIRED, "replaced": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED, "suspended": OrderStatus.ACCEPTED, "stopped": OrderStatus.ACCEPTED,
}


def resolve_keys(cfg: AlpacaConfig) -> tuple[str, str]:
    """Keys from the environment, else the 0600 credentials file; a clear ConfigError otherwise."""
    key, secret = os.environ.get(KEY_ENV, ""), os.environ.get(SECRET_ENV, "")
    if not (key and secret) and cfg.credentials_file:
        try:
            creds = load_credentials(os.path.expanduser(cfg.credentials_file))
        except FileNotFoundError:
            raise ConfigError("alpaca.credentials_file", f"no such file: {cfg.credentials_file}") from None
        key, secret = key or creds.get(KEY_ENV, ""), secret or creds.get(SECRET_ENV, "")
    if not (key and secret):
        raise ConfigError("alpaca", f"no Alpaca API keys: set {KEY_ENV} and {SECRET_ENV}, or alpaca.credentials_file "
                                    "to a 0600 file with those two lines")
    return key, secret


class StreamStateMixin:
    """For alpaca-py's websocket streams: report (re)connections and keep the auth error.

    Mixed in front of TradingStream / StockDataStream / NewsDataStream; ``on_state(True)``
    fires when the socket is up after authentication, ``on_state(False)`` when an open socket
    closes and when authentication fails (``auth_error`` says why; owners handle repeats).
    """

    def __init__(self, on_state: Callable[[bool], None], *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)  # type: ignore[call-arg]
        self._on_state = on_state
        self.auth_error: str | None = None

    async def _auth(self) -> None:
        try:
            await super()._auth()  # type: ignore[misc]
        except ValueError as exc:  # keep the reason; the adapters turn it into BrokerError("auth")
            self.auth_error = str(exc)
            self._on_state(False)
            raise

    async def _start_ws(self) -> None:
        await super()._start_ws()  # type: ignore[misc]
        self.auth_error = None
        self._on_state(True)

    async def close(self) -> None:
        was_up = self._running and self._ws is not None  # type: ignore[attr-defined]
        await super().close()  # type: ignore[misc]
        if was_up:
            self._on_state(False)


class StreamSupervisor:
    """Runs an alpaca-py stream's ``_run_forever()`` as a task on our loop and restarts it when it ends.

    alpaca-py 0.44 reconnects by itself after websocket errors, but its loop gives up on others:
    the data stream returns for good on an "insufficient subscription" error (which a server
    can send after a reconnect, not only at the first connect), and any exception escaping its
    retry loop (e.g. from a close() of a broken socket) ends the task with nobody reconnecting.
    The supervisor sees the task end while nobody asked it to, reports the stream lost
    (``on_lost``: the owner marks itself disconnected, which drives REDUCING), waits with
    exponential backoff and jitter, and starts a *fresh* stream from ``make`` (its subscriptions
    are made before it runs: on a running stream alpaca-py's subscribe deadlocks our loop). The
    new stream reports its connection as usual, which is what resubscribes and reconciles.
    """

    def __init__(self, name: str, make: Callable[[], Any], on_lost: Callable[[], None],
                 backoff: tuple[float, float]) -> None:
        self.name = name
        self._make = make
        self._on_lost = on_lost
        self.backoff = backoff
        self.stream: Any = None
        self.task: asyncio.Task[None] | None = None
        self.restarts = 0
        self._started = 0.0
        self._watch: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> Any:
        """A fresh stream, running as a task; returns the stream."""
        self.stream = self._make()
        self.task = asyncio.get_running_loop().create_task(self.stream._run_forever(), name=self.name)
        self._started = time.monotonic()
        return self.stream

    def supervise(self) -> None:
        """From now on an ended task is restarted (call once the first connection succeeded, so that a
        start-up failure such as rejected keys still fails start-up with its reason)."""
        if self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(self._supervise(), name=f"{self.name}-supervisor")

    async def _supervise(self) -> None:
        attempt = 0
        while not self._closing and self.task is not None:
            task = self.task
            await asyncio.wait({task})
            if self._closing:
                return
            why = "returned" if task.cancelled() or task.exception() is None else repr(task.exception())
            if time.monotonic() - self._started > 2 * self.backoff[1]:
                attempt = 0  # it ran fine for a while: start the backoff over
            log.warning("alpaca stream ended; restarting it", stream=self.name, why=why)
            self._on_lost()
            try:
                await self.stream.close()  # whatever socket the dead loop left behind
            except Exception as exc:
                log.debug("closing the ended stream failed", stream=self.name, error=repr(exc))
            while True:  # until a fresh stream runs: every failed start waits longer
                delay = backoff_seconds(attempt, *self.backoff)
                attempt += 1
                await asyncio.sleep(delay)
                if self._closing:
                    return
                try:
                    self.start()
                    break
                except Exception:
                    log.exception("restarting an alpaca stream failed", stream=self.name, attempt=attempt,
                                  delay=round(delay, 2))
            self.restarts += 1

    async def close(self) -> None:
        self._closing = True
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        await stop_stream(self.stream, self.task)


async def stop_stream(stream: Any, task: asyncio.Task[None] | None) -> None:
    """Stop an alpaca-py stream that runs as ``task`` on our loop: socket first, then the task."""
    if stream is not None:
        await stream.stop_ws()
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    if stream is not None:
        await stream.close()


class _TimeoutAdapter(HTTPAdapter):
    """alpaca-py passes no timeout to requests: a dead server would hang a thread forever."""

    def send(self, request: Any, **kw: Any) -> Any:  # type: ignore[override]
        if kw.get("timeout") is None:
            kw["timeout"] = HTTP_TIMEOUT
        return super().send(request, **kw)


def with_timeout(client: T) -> T:
    session: requests.Session = client._session  # type: ignore[attr-defined]
    for prefix in ("http://", "https://"):
        session.mount(prefix, _TimeoutAdapter())
    return client


def api_failure(exc: Exception, what: str, url: str) -> BrokerError:
    """One BrokerError for any REST failure, with a code callers can act on (no traceback)."""
    if isinstance(exc, APIError):
        status = exc.status_code
        if status in (401, 403):
            return BrokerError("auth", f"Alpaca rejected the API keys ({what}: HTTP {status}) at {url}")
        try:
            detail = exc.message
        except Exception:
            detail = str(exc)[:200]
        return BrokerError("rejected" if status and status < 500 else "venue", f"{what}: HTTP {status}: {detail}")
    if isinstance(exc, requests.RequestException):
        return BrokerError("unreachable", f"{what}: cannot reach Alpaca at {url}: {type(exc).__name__}")
    return BrokerError("venue", f"{what}: {type(exc).__name__}: {exc}")


def ws_params(cfg: AlpacaConfig) -> dict[str, Any]:
    # alpaca-py's default ping timeout is 180 s: a dead link would go unnoticed for 3 minutes
    return {"ping_interval": min(10.0, cfg.ping_timeout_seconds), "ping_timeout": cfg.ping_timeout_seconds,
            "max_queue": 1024}


def ns_of(ts: dt.datetime | None) -> int:
    if ts is None:
        return 0
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    return int(ts.timestamp() * 1_000_000) * 1000


def utc_of(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)


def broker_order(o: AOrder) -> BrokerOrder:
    typ = OrderType.LIMIT if str(getattr(o.type, "value", o.type)) == "limit" else OrderType.MARKET
    tif = TimeInForce.GTC if str(getattr(o.time_in_force, "value", o.time_in_force)) == "gtc" else TimeInForce.DAY
    status = _STATUS.get(str(getattr(o.status, "value", o.status)), OrderStatus.ACCEPTED)
    return BrokerOrder(
        client_order_id=o.client_order_id or str(o.id), broker_order_id=str(o.id), symbol=o.symbol or "",
        side=Side(str(getattr(o.side, "value", o.side))), qty=int(float(o.qty or 0)),
        filled_qty=int(float(o.filled_qty or 0)), status=status, avg_fill_price=float(o.filled_avg_price or 0.0),
        type=typ, limit_price=float(o.limit_price) if o.limit_price else None, tif=tif, ts=ns_of(o.submitted_at))
