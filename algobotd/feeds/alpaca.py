"""Alpaca market data (alpaca-py 0.44): live bars/quotes/trades over the StockDataStream
websocket, warm-up history from StockHistoricalDataClient.

Why it looks the way it does:
- ``StockDataStream.run()`` calls ``asyncio.run()``; we run ``_run_forever()`` as a task on
  the daemon's loop. Every symbol is subscribed *before* that task starts: alpaca-py's
  ``subscribe_*`` on a running stream waits on ``run_coroutine_threadsafe(...).result()``,
  which deadlocks when called from the loop's own thread. After a reconnect alpaca-py
  sends the subscription again by itself.
- ``raw_data=True``: messages stay msgpack dicts (``t`` a msgpack Timestamp) and we build our
  records directly; pydantic models per bar would cost more than the rest of the ingest.
- Alpaca publishes 1-minute bars (``t`` = minute start); the BarClock aggregates them into
  ``feed.bar_seconds`` intervals (a multiple of 60), validates at the edge, and closes an
  interval when every symbol reported or the grace period passed (a 1 s ticker checks).
- History is REST (synchronous): ``asyncio.to_thread``, widening the window until enough
  intervals were found (nights, weekends and holidays have none).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from alpaca.data.enums import DataFeed
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.live.stock import StockDataStream
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from algobotd.brokers.alpaca_common import (
    StreamStateMixin,
    StreamSupervisor,
    api_failure,
    resolve_keys,
    with_timeout,
    ws_params,
)
from algobotd.brokers.base import BrokerError
from algobotd.config import AlpacaConfig, ConfigError, FeedConfig
from algobotd.domain import NS_PER_SECOND, Bar, BarBatch, Quote, Trade
from algobotd.feeds.barclock import BarClock
from algobotd.feeds.base import ResumePoint

log = structlog.get_logger(__name__)
ALPACA_BAR_SECONDS = 60


class _DataStream(StreamStateMixin, StockDataStream):
    """StockDataStream that reports (dis)connections and keeps the auth/permission error."""


class AlpacaFeed:
    def __init__(self, cfg: FeedConfig, acfg: AlpacaConfig, clock: Callable[[], int] | None = None,
                 connect_timeout: float = 15.0) -> None:
        if not cfg.symbols:
            raise ConfigError("feed.symbols", "required with feed.kind = \"alpaca\" (e.g. [\"AAPL\", \"MSFT\"])")
        if cfg.bar_seconds % ALPACA_BAR_SECONDS:
            raise ConfigError("feed.bar_seconds", f"must be a multiple of 60 with the Alpaca feed, got {cfg.bar_seconds}")
        self.cfg, self.acfg = cfg, acfg
        self.symbols: tuple[str, ...] = tuple(cfg.symbols)
        # set by the daemon: called with (symbol, ts, trade price, bid, ask) between bars
        self.price_listener: Callable[[str, int, float | None, float | None, float | None], None] | None = None
        self.bar_seconds = cfg.bar_seconds
        self._keys = resolve_keys(acfg)  # missing keys fail at assembly, before anything connects
        self._now = clock or time.time_ns
        self.reconnect = (acfg.reconnect_initial_seconds, acfg.reconnect_max_seconds)
        self.connect_timeout = connect_timeout
        self.barclock = BarClock(self.symbols, cfg.bar_seconds, cfg.grace_seconds, source_seconds=ALPACA_BAR_SECONDS)
        self._queue: asyncio.Queue[BarBatch] = asyncio.Queue()
        self._sup: StreamSupervisor | None = None  # the data stream, restarted when alpaca-py gives up
        self._up = asyncio.Event()
        self._closing = False
        self.reconnects = 0
        self.bars_in = 0
        self.quotes_in = 0
        self.trades_in = 0
        self.last_trade: dict[str, Trade] = {}

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    # --- live ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the stream (idempotent); BrokerError("auth"/"permission"/"unreachable") on failure."""
        if self._sup is not None:
            return
        self._closing = False
        sup = self._sup = StreamSupervisor("alpaca-data-stream", self._new_stream, lambda: self._on_state(False),
                                           self.reconnect)
        s = sup.start()
        deadline = time.monotonic() + self.connect_timeout
        while not self._up.is_set():
            if s.auth_error or (sup.task is not None and sup.task.done()) or time.monotonic() > deadline:
                why = s.auth_error or "no connection"
                await self.close()
                code = "permission" if "subscription" in why else "auth" if s.auth_error else "unreachable"
                raise BrokerError(code, f"Alpaca {self.acfg.data_feed} data stream: {why}")
            await asyncio.sleep(0.02)
        sup.supervise()
        log.info("alpaca data stream connected", feed=self.acfg.data_feed, symbols=len(self.symbols))

    def _new_stream(self) -> _DataStream:
        """Subscribed before it runs (see the module docstring); a restarted stream subscribes again."""
        key, secret = self._keys
        s = _DataStream(self._on_state, key, secret, raw_data=True, feed=DataFeed(self.acfg.data_feed),
                        url_override=self.acfg.data_stream_url or None, websocket_params=ws_params(self.acfg))
        s._reconnect_min_backoff, s._reconnect_max_backoff = self.reconnect
        s._max_frame_size = 1 << 20
        s.subscribe_bars(self._on_bar, *self.symbols)
        s.subscribe_quotes(self._on_quote, *self.symbols)
        s.subscribe_trades(self._on_trade, *self.symbols)
        return s

    def _on_state(self, up: bool) -> None:
        if up:
            self._up.set()
            self.reconnects += 1
        elif not self._closing:
            self._up.clear()
            log.warning("alpaca data stream lost; alpaca-py reconnects and resubscribes")

    def _take(self, batches: list[BarBatch]) -> None:
        for b in batches:
            self._queue.put_nowait(b)

    async def _on_bar(self, m: dict[str, Any]) -> None:
        self.bars_in += 1
        ts = m["t"].to_unix_nano()
        self._take(self.barclock.add(Bar(m["S"], ts, float(m["o"]), float(m["h"]), float(m["l"]),
                                         float(m["c"]), float(m["v"]))))

    async def _on_quote(self, m: dict[str, Any]) -> None:
        self.quotes_in += 1
        q = Quote(m["S"], m["t"].to_unix_nano(), float(m["bp"]), float(m["ap"]), float(m.get("bs", 0)),
                  float(m.get("as", 0)))
        self.barclock.add_quote(q)
        if self.price_listener is not None:  # stops are checked on every price, not only at bar close
            self.price_listener(q.symbol, q.ts, None, q.bid, q.ask)

    async def _on_trade(self, m: dict[str, Any]) -> None:
        # prints feed the interval's tick-rule volume (IntrabarFlow) and the status views
        self.trades_in += 1
        t = self.last_trade[m["S"]] = Trade(m["S"], m["t"].to_unix_nano(), float(m["p"]), float(m["s"]))
        self.barclock.add_trade(t)
        if self.price_listener is not None:
            self.price_listener(t.symbol, t.ts, t.price, None, None)

    async def batches(self, resume: ResumePoint | None) -> AsyncIterator[BarBatch]:
        await self.start()
        after = resume.last_ts if resume is not None else None
        while True:
            try:
                batch = await asyncio.wait_for(self._queue.get(), 1.0)
            except TimeoutError:
                # symbols that never report (halted, illiquid) must not stall the interval
                self._take(self.barclock.flush_due(self._now()))
                continue
            if after is not None and batch.ts <= after:
                continue
            yield batch

    async def close(self) -> None:
        self._closing = True
        if self._sup is not None:
            await self._sup.close()
            self._sup = None
        self._up.clear()

    # --- history ------------------------------------------------------------------------------

    def _client(self) -> StockHistoricalDataClient:
        key, secret = self._keys
        return with_timeout(StockHistoricalDataClient(key, secret, raw_data=True,
                                                      url_override=self.acfg.data_url or None))

    async def history(self, n_bars: int, resume: ResumePoint | None) -> list[BarBatch]:
        """Up to ``n_bars`` complete intervals before the current one (stream started first so
        no bar falls between history and live)."""
        if n_bars <= 0:
            return []
        await self.start()
        now = self._now()
        bar_ns = self.bar_seconds * NS_PER_SECOND
        end = now - now % bar_ns  # the interval in progress belongs to the live stream
        client = self._client()
        window = int(n_bars * bar_ns * 1.5) + 3600 * NS_PER_SECOND
        batches: list[BarBatch] = []
        while True:
            raw = await self._fetch(client, end - window, end)
            batches = self._to_batches(raw, end)
            if len(batches) >= n_bars or window >= 10 * 86_400 * NS_PER_SECOND:
                break
            window *= 2
        return batches[-n_bars:]

    async def _fetch(self, client: StockHistoricalDataClient, start: int, end: int) -> dict[str, list[dict[str, Any]]]:
        req = StockBarsRequest(symbol_or_symbols=list(self.symbols),
                               timeframe=TimeFrame(1, TimeFrameUnit.Minute),
                               start=dt.datetime.fromtimestamp(start / 1e9, tz=dt.UTC),
                               end=dt.datetime.fromtimestamp((end - 1) / 1e9, tz=dt.UTC),
                               feed=DataFeed(self.acfg.data_feed))
        try:
            return await asyncio.to_thread(client.get_stock_bars, req)
        except Exception as exc:
            err = api_failure(exc, "history", self.acfg.data_url or "data.alpaca.markets")
            if err.code == "auth" and "HTTP 403" in err.message:
                err = BrokerError("permission", f"Alpaca refused {self.acfg.data_feed} bars: {err.message}")
            raise err from None

    def _to_batches(self, raw: dict[str, list[dict[str, Any]]], end: int) -> list[BarBatch]:
        """1-minute REST bars -> validated batches of ``bar_seconds`` through a private BarClock."""
        clock = BarClock(self.symbols, self.bar_seconds, 0.0, source_seconds=ALPACA_BAR_SECONDS)
        rows: list[Bar] = []
        for sym, bars in (raw or {}).items():
            for b in bars:
                t = dt.datetime.fromisoformat(str(b["t"]).replace("Z", "+00:00"))
                rows.append(Bar(sym, int(t.timestamp()) * NS_PER_SECOND, float(b["o"]), float(b["h"]),
                                float(b["l"]), float(b["c"]), float(b["v"])))
        rows.sort(key=lambda r: r.ts)
        out: list[BarBatch] = []
        for r in rows:
            out += clock.add(r)
        out += clock.flush_due(end + 1)
        return [b for b in out if b.ts + self.bar_seconds * NS_PER_SECOND <= end]

