"""IB options flow: underlying-level option ticks plus a near-the-money strip probe per poll.

- ``reqMktData(stock, "100,101,106")`` streams the underlying's day option volume (ticks 29/30),
  open interest (27/28) and 30-day implied volatility (24) into its ``Ticker``: put/call by
  volume and open interest and the ATM IV come from there, without polling a whole chain
  (IB meters market-data lines; a chain of hundreds of contracts would exhaust them).
- Strip probe: ``reqSecDefOptParams`` gives expirations and strikes (cached per day); each poll
  subscribes, in the first expiry at least ``MIN_DAYS`` out, the ``STRIP_STRIKES`` strikes
  nearest spot (fewer when the universe leaves less of ``MARKET_DATA_LINES``) plus those
  nearest 5% out of the money, as puts and calls with generic tick 101; waits up to
  ``GREEKS_WAIT`` for IB's model greeks (``modelGreeks``: implied vol, delta, gamma) and each
  contract's open interest (``callOpenInterest`` / ``putOpenInterest`` on the option's own
  ticker), then cancels them. IV skew: the 5%-OTM put's minus call's implied vol. Dealer
  gamma: ``options_flow.dealer_gamma`` over the strip (gamma concentrates near the money; far
  strikes and later expiries are left out, so it is an estimate). Unusual activity also
  counts the strip's volume/open-interest spikes.

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
from algobotd.altdata.options_flow import MIN_DAYS, OTM_MONEYNESS, Contract, FlowState, summarize_totals

log = structlog.get_logger(__name__)
NAME = "ib_options"
GREEKS_WAIT = 5.0  # seconds to wait for IB's model greeks and open interest on the strip
STRIP_STRIKES = 8  # strikes nearest spot per poll, plus the two ~5% OTM: <= 20 market-data lines for seconds
MARKET_DATA_LINES = 100  # IB's default simultaneous market-data lines; the underlyings' option ticks use one each


def _num(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else math.nan


def _oi(t: Any) -> float:
    """An option's open interest: IB sends it on the option's own ticker as tick 27 (a call) or 28 (a put)."""
    return _num(t.callOpenInterest if _right(t) == "C" else t.putOpenInterest)


def _right(t: Any) -> str:
    return str(t.contract.right)[:1].upper()  # "C"/"P" (or "CALL"/"PUT" as some requests spell it)


def _contract(sym: str, expiry: str, t: Any) -> Contract:
    g = t.modelGreeks
    return Contract(sym, _right(t), float(t.contract.strike),
                    dt.date(int(expiry[:4]), int(expiry[4:6]), int(expiry[6:8])), _num(t.volume), _oi(t),
                    _num(g.impliedVol) if g is not None else math.nan, _num(g.delta) if g is not None else math.nan,
                    _num(g.gamma) if g is not None else math.nan)


class IBOptions:
    def __init__(self, hub: AltHub, feed: Any, poll_seconds: float, spot: Callable[[str], float],
                 now_ns: Callable[[], int] = time.time_ns) -> None:
        self.hub, self.feed, self.spot, self.now_ns = hub, feed, spot, now_ns
        self.interval = max(poll_seconds / max(len(feed.symbols), 1), 1.0)
        self.state: dict[str, FlowState] = {s: FlowState() for s in feed.symbols}
        self.tickers: dict[str, Any] = {}
        self._chains: dict[str, tuple[dt.date, Any]] = {}  # symbol -> (day fetched, chain)
        # a large universe leaves fewer lines for the strip (down to the two skew strikes)
        self.strip_strikes = max(0, min(STRIP_STRIKES, (MARKET_DATA_LINES - len(feed.symbols)) // 2 - 2))
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

    async def _strip(self, sym: str, spot: float) -> tuple[float, float, list[Contract]]:
        """(5%-OTM put IV, 5%-OTM call IV, the strip's contracts with greeks and open interest)."""
        chain = await self._chain(sym)
        if chain is None or not math.isfinite(spot):
            return math.nan, math.nan, []
        today = dt.datetime.now(tz=dt.UTC).date()
        exps = sorted(e for e in chain.expirations if (dt.date(int(e[:4]), int(e[4:6]), int(e[6:8])) - today).days >= MIN_DAYS)
        puts = [k for k in chain.strikes if k <= spot]
        calls = [k for k in chain.strikes if k >= spot]
        if not exps or not puts or not calls:
            return math.nan, math.nan, []
        kp = min(puts, key=lambda k: abs(k - spot * (1 - OTM_MONEYNESS)))
        kc = min(calls, key=lambda k: abs(k - spot * (1 + OTM_MONEYNESS)))
        near = sorted(chain.strikes, key=lambda k: abs(k - spot))[:self.strip_strikes]
        strikes = sorted({kp, kc, *near})
        ib = self.feed.ib
        opts = [Option(sym, exps[0], k, right, "SMART", multiplier=chain.multiplier, currency="USD",
                       tradingClass=chain.tradingClass) for k in strikes for right in ("P", "C")]
        opts = [o for o in await ib.qualifyContractsAsync(*opts) if o is not None and o.conId]
        if not opts:
            self.hub.count("ib_options_unqualified")
            return math.nan, math.nan, []
        tickers = [ib.reqMktData(o, "101") for o in opts]  # 101: the contract's open interest
        try:
            end = time.monotonic() + GREEKS_WAIT
            while time.monotonic() < end and not all(t.modelGreeks is not None and math.isfinite(_oi(t))
                                                     for t in tickers):
                await asyncio.sleep(0.05)
            rows = [_contract(sym, exps[0], t) for t in tickers]
        finally:
            for o in opts:
                ib.cancelMktData(o)
        iv = {(c.right, c.strike): c.iv for c in rows}
        return iv.get(("P", kp), math.nan), iv.get(("C", kc), math.nan), rows

    async def poll(self, sym: str) -> bool:
        t = self.tickers.get(sym)
        if t is None:
            return False
        spot = self.spot(sym)
        try:
            put_iv, call_iv, strip = await self._strip(sym, spot)
        except (ConnectionError, OSError, ValueError) as exc:
            self.hub.mark_failed(NAME, f"{type(exc).__name__}: {exc}")
            return False
        out = summarize_totals(sym, self.now_ns(), _num(t.callVolume), _num(t.putVolume), _num(t.callOpenInterest),
                               _num(t.putOpenInterest), _num(t.impliedVolatility), put_iv, call_iv, self.state[sym],
                               strip, spot)
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
