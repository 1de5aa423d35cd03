"""IB options flow: underlying-level option ticks plus a two-contract skew probe per poll.

- ``reqMktData(stock, "100,101,106")`` streams the underlying's day option volume (ticks 29/30),
  open interest (27/28) and 30-day implied volatility (24) into its ``Ticker``: put/call by
  volume and open interest and the ATM IV come from there, without polling a whole chain
  (IB meters market-data lines; a chain of hundreds of contracts would exhaust them).
- IV skew: ``reqSecDefOptParams`` gives expirations and strikes (cached per day); each poll
  subscribes the put and the call nearest 5% out of the money in the first expiry at least
  ``MIN_DAYS`` out, waits for IB's model greeks, reads their implied vols and cancels.
- Dealer gamma needs gamma and open interest per contract across the chain: NaN from IB here.

Only ib_async's async / non-blocking calls are used.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections.abc import Callable
from typing import Any

import structlog
from ib_async import Option

from algobotd.altdata.hub import AltHub
from algobotd.altdata.options_flow import MIN_DAYS, OTM_MONEYNESS, FlowState, summarize_totals

log = structlog.get_logger(__name__)
NAME = "ib_options"
GREEKS_WAIT = 5.0  # seconds to wait for IB's model greeks on the two skew contracts


def _num(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else math.nan


class IBOptions:
    def __init__(self, hub: AltHub, feed: Any, poll_seconds: float, spot: Callable[[str], float],
                 now_ns: Callable[[], int] = time.time_ns) -> None:
        self.hub, self.feed, self.spot, self.now_ns = hub, feed, spot, now_ns
        self.interval = max(poll_seconds / max(len(feed.symbols), 1), 1.0)
        self.state: dict[str, FlowState] = {s: FlowState() for s in feed.symbols}
        self.tickers: dict[str, Any] = {}
        self._chains: dict[str, tuple[dt.date, Any]] = {}  # symbol -> (day fetched, chain)
        hub.source(NAME, "options")

    async def start(self) -> None:
        if self.tickers:  # a restarted run() must not subscribe twice
            return
        await self.feed._ensure_connected()
        self.feed.session.on_restored.append(self._on_restored)
        self._subscribe()

    def _subscribe(self) -> None:
        for sym, contract in self.feed.contracts.items():
            self.tickers[sym] = self.feed.ib.reqMktData(contract, "100,101,106")

    async def _on_restored(self, resubscribe: bool) -> None:
        if resubscribe and self.tickers:  # the gateway forgot the requests: subscribe again
            self.tickers.clear()
            self._subscribe()

    async def _chain(self, sym: str) -> Any:
        today = dt.datetime.now(tz=dt.UTC).date()
        cached = self._chains.get(sym)
        if cached is not None and cached[0] == today:
            return cached[1]
        contract = self.feed.contracts[sym]
        chains = await self.feed.ib.reqSecDefOptParamsAsync(sym, "", "STK", contract.conId)
        chain = next((c for c in chains if c.exchange == "SMART"), chains[0] if chains else None)
        self._chains[sym] = (today, chain)
        return chain

    async def _skew(self, sym: str, spot: float) -> tuple[float, float]:
        chain = await self._chain(sym)
        if chain is None or not math.isfinite(spot):
            return math.nan, math.nan
        today = dt.datetime.now(tz=dt.UTC).date()
        exps = sorted(e for e in chain.expirations if (dt.date(int(e[:4]), int(e[4:6]), int(e[6:8])) - today).days >= MIN_DAYS)
        puts = [k for k in chain.strikes if k <= spot]
        calls = [k for k in chain.strikes if k >= spot]
        if not exps or not puts or not calls:
            return math.nan, math.nan
        kp = min(puts, key=lambda k: abs(k - spot * (1 - OTM_MONEYNESS)))
        kc = min(calls, key=lambda k: abs(k - spot * (1 + OTM_MONEYNESS)))
        ib = self.feed.ib
        opts = [Option(sym, exps[0], kp, "P", "SMART", multiplier=chain.multiplier, currency="USD",
                       tradingClass=chain.tradingClass),
                Option(sym, exps[0], kc, "C", "SMART", multiplier=chain.multiplier, currency="USD",
                       tradingClass=chain.tradingClass)]
        opts = [o for o in await ib.qualifyContractsAsync(*opts) if o is not None and o.conId]
        if len(opts) != 2:
            self.hub.count("ib_options_unqualified")
            return math.nan, math.nan
        tickers = [ib.reqMktData(o, "") for o in opts]
        try:
            end = time.monotonic() + GREEKS_WAIT
            while time.monotonic() < end and not all(t.modelGreeks is not None for t in tickers):
                await asyncio.sleep(0.05)
            ivs = [_num(t.modelGreeks.impliedVol) if t.modelGreeks is not None else math.nan for t in tickers]
        finally:
            for o in opts:
                ib.cancelMktData(o)
        return ivs[0], ivs[1]

    async def poll(self, sym: str) -> bool:
        t = self.tickers.get(sym)
        if t is None:
            return False
        try:
            put_iv, call_iv = await self._skew(sym, self.spot(sym))
        except (ConnectionError, OSError, ValueError) as exc:
            self.hub.mark_failed(NAME, f"{type(exc).__name__}: {exc}")
            return False
        out = summarize_totals(sym, self.now_ns(), _num(t.callVolume), _num(t.putVolume), _num(t.callOpenInterest),
                               _num(t.putOpenInterest), _num(t.impliedVolatility), put_iv, call_iv, self.state[sym])
        if out is None:
            self.hub.count("ib_options_no_ticks")
            return False
        self.hub.mark_ok(NAME)
        self.hub.add_options(out[0], NAME, out[1])
        return True

    async def run(self) -> None:
        await self.start()
        while True:
            for sym in self.feed.symbols:
                await self.poll(sym)
                await asyncio.sleep(self.interval)

    async def warm(self, start_ns: int, end_ns: int) -> int:
        return 0

    async def close(self) -> None:
        if self._on_restored in self.feed.session.on_restored:
            self.feed.session.on_restored.remove(self._on_restored)
        for t in self.tickers.values():
            try:
                self.feed.ib.cancelMktData(t.contract)
            except (ConnectionError, OSError, ValueError):
                pass  # the connection may already be gone at shutdown
        self.tickers.clear()
