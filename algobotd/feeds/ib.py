"""Interactive Brokers market data through ib_async (async / non-blocking calls only).

- Live bars: ``reqRealTimeBars`` (IB only has 5-second bars) into a :class:`BarClock` with
  ``source_seconds=5``, which aggregates them into ``feed.bar_seconds`` batches and validates
  them at the edge. Quotes: ``reqTickByTickData(contract, "BidAsk")``.
- Warm-up: ``reqHistoricalDataAsync`` with ``formatDate=2`` (epoch seconds, so UTC, whatever
  the TWS login's time zone), paced by :class:`HistoryPacer` to IB's rules. ib_async returns an
  *empty* list when a request times out; here that is an error (``history_timeout``), never
  "no data", and request errors (e.g. 162 pacing violation) raise instead of looking empty.
- The feed has its own API connection (``ib.data_client_id``, default ``ib.client_id + 1``),
  read-only, so a data problem never touches the order connection. After a reconnect (or IB's
  1101 "restored, data lost") every subscription is made again; intervals missed meanwhile
  close with their symbols marked stale.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import AsyncIterator, Callable, Hashable
from functools import partial

import structlog
from ib_async import Contract, RealTimeBarList, RequestError, Stock, Ticker, TickByTickBidAsk

from algobotd.brokers.base import BrokerError
from algobotd.brokers.ib_session import IBSession, ns
from algobotd.config import ConfigError, FeedConfig, IBConfig
from algobotd.domain import NS_PER_SECOND, Bar, BarBatch, Quote
from algobotd.feeds.barclock import BarClock
from algobotd.feeds.base import ResumePoint

log = structlog.get_logger(__name__)

RT_BAR_SECONDS = 5
BAR_SIZES = {5: "5 secs", 10: "10 secs", 15: "15 secs", 30: "30 secs", 60: "1 min", 120: "2 mins",
             180: "3 mins", 300: "5 mins", 600: "10 mins", 900: "15 mins", 1200: "20 mins", 1800: "30 mins",
             3600: "1 hour", 7200: "2 hours", 10800: "3 hours", 14400: "4 hours", 28800: "8 hours",
             86400: "1 day"}
MAX_SECONDS_DURATION = {5: 3600, 10: 14400, 15: 14400, 30: 28800}  # IB's limits for second bars
RTH_SECONDS = 23_400  # one regular session


class HistoryPacer:
    """IB's historical-data pacing: no identical request within 15 s, at most 60 requests in any
    10 minutes, at most 6 for one contract in 2 s. ``acquire`` sleeps until a request may go."""

    def __init__(self, identical_seconds: float = 15.0, window_seconds: float = 600.0, max_in_window: int = 60,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.identical = identical_seconds
        self.window = window_seconds
        self.max_in_window = max_in_window
        self.clock = clock
        self._times: collections.deque[float] = collections.deque()
        self._last: dict[Hashable, float] = {}
        self._per_contract: dict[Hashable, collections.deque[float]] = collections.defaultdict(collections.deque)
        self.waited = 0.0

    def delay(self, key: Hashable, contract: Hashable) -> float:
        """Seconds until a request ``key`` for ``contract`` may be sent (0: now)."""
        now = self.clock()
        while self._times and now - self._times[0] >= self.window:
            self._times.popleft()
        wait = 0.0
        if len(self._times) >= self.max_in_window:
            wait = self._times[0] + self.window - now
        last = self._last.get(key)
        if last is not None:
            wait = max(wait, last + self.identical - now)
        recent = self._per_contract[contract]
        while recent and now - recent[0] >= 2.0:
            recent.popleft()
        if len(recent) >= 5:  # IB: "six or more ... within two seconds" is a violation
            wait = max(wait, recent[0] + 2.0 - now)
        return wait

    def record(self, key: Hashable, contract: Hashable) -> None:
        now = self.clock()
        self._times.append(now)
        self._last[key] = now
        self._per_contract[contract].append(now)

    async def acquire(self, key: Hashable, contract: Hashable) -> None:
        # no await between the last delay() and record(): concurrent callers stay within the rules
        while (wait := self.delay(key, contract)) > 0:
            self.waited += wait
            await asyncio.sleep(wait)
        self.record(key, contract)


def history_duration(n_bars: int, bar_seconds: int, src_seconds: int) -> str:
    need = n_bars * bar_seconds
    if src_seconds in MAX_SECONDS_DURATION:
        return f"{min(max(need, src_seconds), MAX_SECONDS_DURATION[src_seconds])} S"
    days = math.ceil(need / RTH_SECONDS) + 3  # overnight, weekends and holidays have no bars
    return f"{days} D"


class IBFeed:
    def __init__(self, feed: FeedConfig, ib: IBConfig) -> None:
        if not feed.symbols:
            raise ConfigError("feed.symbols", "the IB feed needs an explicit list of symbols")
        if feed.bar_seconds % RT_BAR_SECONDS:
            raise ConfigError("feed.bar_seconds", f"must be a multiple of {RT_BAR_SECONDS} with feed.kind = \"ib\" "
                              f"(IB real-time bars are 5-second bars), got {feed.bar_seconds}")
        self.symbols: tuple[str, ...] = tuple(feed.symbols)
        # set by the daemon: called with (symbol, ts, trade price, bid, ask) between bars
        self.price_listener: Callable[[str, int, float | None, float | None, float | None], None] | None = None
        self.bar_seconds = feed.bar_seconds
        self.cfg = ib
        self.clock = BarClock(self.symbols, feed.bar_seconds, feed.grace_seconds, source_seconds=RT_BAR_SECONDS)
        cid = ib.data_client_id if ib.data_client_id >= 0 else ib.client_id + 1
        self.session = IBSession(ib, cid, readonly=True, name="feed")
        self.ib = self.session.ib
        self.pacer = HistoryPacer()
        self.contracts: dict[str, Contract] = {}
        self.bars_in = 0
        self.quotes_in = 0
        self._subs: list[tuple[RealTimeBarList, Ticker]] = []
        self._queue: asyncio.Queue[BarBatch] = asyncio.Queue()
        self._flusher: asyncio.Task[None] | None = None
        self._connect_lock = asyncio.Lock()
        self.session.on_restored.append(self._on_restored)

    @property
    def connected(self) -> bool:
        return self.session.up

    async def _ensure_connected(self) -> None:
        async with self._connect_lock:
            if self.contracts:
                return
            await self.session.connect()
            found = await self.ib.qualifyContractsAsync(*[Stock(s, "SMART", "USD") for s in self.symbols])
            missing = [s for s, c in zip(self.symbols, found) if not isinstance(c, Contract)]
            if missing:
                raise BrokerError("unknown_symbol", f"IB has no unique US stock for {', '.join(missing)}")
            self.contracts = {s: c for s, c in zip(self.symbols, found)}  # type: ignore[misc]

    # --- warm-up ----------------------------------------------------------------------------------

    async def history(self, n_bars: int, resume: ResumePoint | None) -> list[BarBatch]:
        """The last ``n_bars`` complete intervals before now, across all symbols."""
        if n_bars <= 0:
            return []
        await self._ensure_connected()
        src = max(s for s in BAR_SIZES if self.bar_seconds % s == 0 and s <= self.bar_seconds)
        per_symbol = await asyncio.gather(*(self._history_one(s, n_bars, src) for s in self.symbols))
        clock = BarClock(self.symbols, self.bar_seconds, 0.0, source_seconds=src)
        out: list[BarBatch] = []
        for bar in sorted((b for bars in per_symbol for b in bars), key=lambda b: (b.ts, b.symbol)):
            out += clock.add(bar)
        now = time.time_ns()
        out += clock.flush_due(now)  # closes complete intervals; the current one is still forming
        if resume is not None:
            out = [b for b in out if b.ts > resume.last_ts]
        return [b for b in out if b.ts + self.bar_seconds * NS_PER_SECOND <= now][-n_bars:]

    async def _history_one(self, symbol: str, n_bars: int, src: int) -> list[Bar]:
        c = self.contracts[symbol]
        duration = history_duration(n_bars, self.bar_seconds, src)
        key = (symbol, duration, BAR_SIZES[src], self.cfg.what_to_show, self.cfg.use_rth)
        await self.pacer.acquire(key, symbol)
        timeout = self.cfg.history_timeout_seconds
        start = time.monotonic()
        try:
            rows = await self.ib.reqHistoricalDataAsync(c, "", duration, BAR_SIZES[src], self.cfg.what_to_show,
                                                        self.cfg.use_rth, formatDate=2, timeout=timeout)
        except RequestError as e:
            raise BrokerError("history_error", f"IB history for {symbol}: error {e.code}: {e.message}") from e
        except ConnectionError as e:
            raise BrokerError("disconnected", f"IB history for {symbol}: connection lost") from e
        if not rows:
            if time.monotonic() - start >= timeout * 0.95:
                raise BrokerError("history_timeout", f"IB history for {symbol}: no answer within {timeout:g} s "
                                  "(ib_async returns an empty list on timeout; this is not 'no data')")
            log.warning("ib history empty", symbol=symbol, duration=duration)
        return [Bar(symbol, ns(r.date), r.open, r.high, r.low, r.close, r.volume) for r in rows]

    async def check_permissions(self) -> dict[str, str | None]:
        """For ``algobotd check-broker``: symbol -> None when IB knows it and returns bars, else why."""
        await self.session.connect()
        found = await self.ib.qualifyContractsAsync(*[Stock(s, "SMART", "USD") for s in self.symbols])
        out: dict[str, str | None] = {}
        for sym, c in zip(self.symbols, found):
            if not isinstance(c, Contract):
                out[sym] = "unknown at IB (no unique US stock on SMART)"
                continue
            await self.pacer.acquire((sym, "check"), sym)
            try:  # daily bars: data even at night or on a weekend, and light on IB's pacing
                rows = await self.ib.reqHistoricalDataAsync(c, "", "5 D", "1 day", self.cfg.what_to_show,
                                                            self.cfg.use_rth, formatDate=2,
                                                            timeout=self.cfg.history_timeout_seconds)
            except RequestError as e:  # 354 / 10089 / 10167 ...: not subscribed to this market data
                out[sym] = f"no market data (IB error {e.code}: {e.message})"
                continue
            out[sym] = None if rows else "no bars returned (no permission, or timed out)"
        return out

    # --- live ---------------------------------------------------------------------------------------

    async def batches(self, resume: ResumePoint | None) -> AsyncIterator[BarBatch]:
        await self._ensure_connected()
        if not self._subs:
            self._subscribe()
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop(), name="ib-feed-flush")
        while True:
            batch = await self._queue.get()
            if resume is None or batch.ts > resume.last_ts:
                yield batch

    def _subscribe(self) -> None:
        self._subs = []
        for sym, c in self.contracts.items():
            bars = self.ib.reqRealTimeBars(c, RT_BAR_SECONDS, self.cfg.what_to_show, self.cfg.use_rth)
            bars.updateEvent += partial(self._on_bar, sym)
            ticker = self.ib.reqTickByTickData(c, "BidAsk")
            ticker.updateEvent += partial(self._on_ticks, sym)
            self._subs.append((bars, ticker))
        log.info("ib subscribed", symbols=len(self._subs))

    def _unsubscribe(self) -> None:
        for bars, ticker in self._subs:
            bars.updateEvent.clear()
            ticker.updateEvent.clear()
            # after a socket loss ib_async reset its tables and the gateway forgot the requests
            if self.ib.isConnected() and self.ib.wrapper.reqId2Subscriber.get(bars.reqId) is bars:
                self.ib.cancelRealTimeBars(bars)
                self.ib.cancelTickByTickData(ticker.contract, "BidAsk")
        self._subs = []

    async def _on_restored(self, resubscribe: bool) -> None:
        if resubscribe and self._subs:
            self._unsubscribe()
            self._subscribe()

    def _on_bar(self, symbol: str, bars: RealTimeBarList, has_new: bool) -> None:
        if not bars:
            return
        b = bars[-1]
        bars.clear()  # the subscription list would otherwise grow all day
        self.bars_in += 1
        for batch in self.clock.add(Bar(symbol, ns(b.time), b.open_, b.high, b.low, b.close, b.volume)):
            self._queue.put_nowait(batch)

    def _on_ticks(self, symbol: str, ticker: Ticker) -> None:
        for t in ticker.tickByTicks:
            if isinstance(t, TickByTickBidAsk):
                self.quotes_in += 1
                self.clock.add_quote(Quote(symbol, ns(t.time), t.bidPrice, t.askPrice, t.bidSize, t.askSize))
                if self.price_listener is not None:  # stops are checked on every price
                    self.price_listener(symbol, ns(t.time), None, t.bidPrice, t.askPrice)

    async def _flush_loop(self) -> None:
        """Close intervals whose grace has passed even when no further bar arrives (gaps, disconnects)."""
        while True:
            await asyncio.sleep(0.25)
            for batch in self.clock.flush_due(time.time_ns()):
                self._queue.put_nowait(batch)

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self.session.close()
