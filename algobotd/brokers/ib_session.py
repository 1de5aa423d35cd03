"""One TWS API connection (host, port, client id) and its life, shared by IBBroker and IBFeed.

- connect with clear errors: refused, timeout, client id in use (IB error 326, which TWS sends
  just before closing the socket, so ib_async itself only sees a timeout), unknown account;
- loss handling is idempotent: ib_async's ``disconnectedEvent`` fires twice for one disconnect
  (from ``client.apiEnd`` and again from ``IB.disconnect``), and IB's 1100/2110 (TWS lost the
  IB servers; our socket stays up) may come before the socket drops as well;
- reconnects with exponential backoff and jitter; ``on_restored`` callbacks then run in order
  (the broker recovers fills, the feed resubscribes); 1101 = restored with market data lost
  (resubscribe), 1102 = restored with data kept.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable

import structlog
from ib_async import IB

from algobotd.brokers.base import BrokerError, backoff_seconds
from algobotd.config import IBConfig

log = structlog.get_logger(__name__)

LOST_CODES = frozenset({1100, 2110})  # TWS <-> IB servers broken (our socket is still up)
RESTORED_DATA_LOST = 1101  # market data subscriptions are gone: resubscribe
RESTORED_DATA_KEPT = 1102
CLIENT_ID_IN_USE = 326


def ns(dt: object) -> int:
    """An aware datetime (ib_async gives UTC ones) -> int ns since the epoch."""
    return int(dt.timestamp() * 1_000_000) * 1000  # type: ignore[attr-defined]


class IBSession:
    """One TWS API connection and its reconnect policy (see the module docstring)."""

    def __init__(self, cfg: IBConfig, client_id: int, readonly: bool, name: str) -> None:
        self.cfg = cfg
        self.client_id = client_id
        self.readonly = readonly
        self.name = name
        self.ib = IB()
        self.ib.RaiseRequestErrors = True  # a failed request raises instead of looking like "no data"
        self.up = False  # socket + API ready and IB servers reachable
        self.disconnects = 0
        self.reconnects = 0
        self.on_lost: list[Callable[[str], None]] = []
        self.on_restored: list[Callable[[bool], Awaitable[None]]] = []  # arg: resubscribe market data
        self._closing = False
        self._errors: collections.deque[int] = collections.deque(maxlen=64)  # recent IB error codes
        self._reconnect_task: asyncio.Task[None] | None = None
        self._restore_task: asyncio.Task[None] | None = None
        self.ib.disconnectedEvent += self._on_disconnected
        self.ib.errorEvent += self._on_error

    async def connect(self) -> None:
        cfg = self.cfg
        self._errors.clear()
        where = f"{cfg.host}:{cfg.port} (client id {self.client_id})"
        try:
            await self.ib.connectAsync(cfg.host, cfg.port, clientId=self.client_id, timeout=cfg.timeout_seconds,
                                       readonly=self.readonly, account=cfg.account)
        except ConnectionRefusedError as e:
            raise BrokerError("connect_refused", f"IB {where} refused the connection: is IB Gateway/TWS running "
                              "with the API enabled on that port (4002 Gateway paper, 7497 TWS paper)?") from e
        except (TimeoutError, asyncio.TimeoutError, ConnectionError, OSError) as e:
            if CLIENT_ID_IN_USE in self._errors:
                raise BrokerError("client_id_in_use", f"IB {where}: client id already in use; set ib.client_id "
                                  "to an id no other API client uses") from e
            raise BrokerError("connect_failed", f"IB {where}: no API handshake ({e!r})") from e
        accounts = self.ib.managedAccounts()
        if cfg.account and cfg.account not in accounts:
            self._closing = True
            self.ib.disconnect()
            self._closing = False
            raise BrokerError("unknown_account", f"IB account {cfg.account!r} is not managed by this login "
                              f"(managed: {', '.join(accounts) or 'none'})")
        self.up = True
        log.info("ib connected", session=self.name, where=where, accounts=accounts)

    async def close(self) -> None:
        self._closing = True
        for t in (self._reconnect_task, self._restore_task):
            if t is not None:
                t.cancel()
                await asyncio.gather(t, return_exceptions=True)
        self.up = False
        self.ib.disconnect()

    def _lost(self, why: str) -> None:
        if not self.up:
            return  # already handled: disconnectedEvent fires twice, 1100 may precede a drop
        self.up = False
        self.disconnects += 1
        log.warning("ib connection lost", session=self.name, why=why)
        for cb in self.on_lost:
            cb(why)

    def _on_disconnected(self) -> None:
        self._lost("disconnected")
        if not self._closing and (self._reconnect_task is None or self._reconnect_task.done()):
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect(), name=f"ib-reconnect-{self.name}")

    def _on_error(self, req_id: int, code: int, msg: str, contract: object) -> None:
        self._errors.append(code)
        if code in LOST_CODES:
            self._lost(f"IB error {code}: {msg}")
        elif code in (RESTORED_DATA_LOST, RESTORED_DATA_KEPT) and not self.up and self.ib.isConnected():
            self._restore_task = asyncio.get_running_loop().create_task(
                self._restored(code == RESTORED_DATA_LOST), name=f"ib-restored-{self.name}")

    async def _restored(self, resubscribe: bool) -> None:
        self.up = True
        log.info("ib connectivity restored", session=self.name, resubscribe=resubscribe)
        await self._run_restored(resubscribe)

    async def _run_restored(self, resubscribe: bool) -> None:
        for cb in self.on_restored:
            try:
                await cb(resubscribe)
            except Exception:  # one failing listener must not starve the others (or kill reconnects)
                log.exception("ib restore callback failed", session=self.name)

    def backoff(self, attempt: int) -> float:
        return backoff_seconds(attempt, self.cfg.reconnect_initial_seconds, self.cfg.reconnect_max_seconds)

    async def _reconnect(self) -> None:
        attempt = 0
        while not self._closing:
            await asyncio.sleep(self.backoff(attempt))
            attempt += 1
            try:
                await self.connect()
            except BrokerError as e:  # 326 included: the gateway may still hold our dead socket
                log.warning("ib reconnect failed", session=self.name, attempt=attempt, code=e.code)
                continue
            except Exception as e:  # anything else from ib_async: keep trying, never die silently
                log.warning("ib reconnect failed", session=self.name, attempt=attempt, error=repr(e))
                continue
            self.reconnects += 1
            await self._run_restored(True)  # a new socket: every subscription must be made again
            return
