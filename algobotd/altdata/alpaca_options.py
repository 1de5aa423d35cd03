"""Alpaca option chains, polled on a schedule within a request budget.

Per underlying and poll: ``OptionHistoricalDataClient.get_option_chain`` (snapshots: day
volume, implied vol, greeks) and ``TradingClient.get_option_contracts`` (open interest, which
snapshots do not carry). Both are synchronous REST: ``asyncio.to_thread``. Underlyings are
polled round-robin, spaced so that the request rate stays under
``altdata.options_requests_per_minute`` and each underlying is revisited every
``altdata.options_poll_seconds`` at most.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections.abc import Callable
from typing import Any

import structlog
from alpaca.data.historical.option import OptionHistoricalDataClient
from alpaca.data.requests import OptionChainRequest
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import GetOptionContractsRequest

from algobotd.altdata.hub import AltHub
from algobotd.altdata.options_flow import Contract, FlowState, parse_occ, summarize
from algobotd.brokers.alpaca_common import api_failure, resolve_keys, with_timeout
from algobotd.config import AlpacaConfig

log = structlog.get_logger(__name__)
NAME = "alpaca_options"
REQUESTS_PER_POLL = 2  # chain + contracts
MAX_EXPIRY_DAYS = 60  # contracts further out add request weight, not signal


def _f(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def contracts_from(snapshots: dict[str, Any], oi: dict[str, float]) -> list[Contract]:
    out = []
    for sym, s in (snapshots or {}).items():
        occ = parse_occ(sym)
        if occ is None or not isinstance(s, dict):
            continue
        _, expiry, right, strike = occ
        greeks = s.get("greeks") or {}
        bar = s.get("dailyBar") or {}
        out.append(Contract(sym, right, strike, expiry, _f(bar.get("v", 0.0)), oi.get(sym, math.nan),
                            _f(s.get("impliedVolatility")), _f(greeks.get("delta")), _f(greeks.get("gamma"))))
    return out


class AlpacaOptions:
    def __init__(self, hub: AltHub, symbols: tuple[str, ...], acfg: AlpacaConfig, poll_seconds: float,
                 requests_per_minute: int, spot: Callable[[str], float],
                 now_ns: Callable[[], int] = time.time_ns) -> None:
        self.hub, self.symbols, self.acfg = hub, symbols, acfg
        self.spot, self.now_ns = spot, now_ns
        self.interval = max(poll_seconds / max(len(symbols), 1), 60.0 * REQUESTS_PER_POLL / requests_per_minute)
        self.state: dict[str, FlowState] = {s: FlowState() for s in symbols}
        self.polls = 0
        key, secret = resolve_keys(acfg)
        self._data = with_timeout(OptionHistoricalDataClient(key, secret, raw_data=True,
                                                             url_override=acfg.data_url or None))
        self._trading = with_timeout(TradingClient(key, secret, paper=acfg.paper, raw_data=True,
                                                   url_override=acfg.rest_url or None))
        hub.source(NAME, "options")

    def _fetch(self, underlying: str) -> tuple[dict[str, Any], dict[str, float]]:
        today = dt.datetime.now(tz=dt.UTC).date()
        horizon = today + dt.timedelta(days=MAX_EXPIRY_DAYS)
        chain = self._data.get_option_chain(OptionChainRequest(underlying_symbol=underlying,
                                                               expiration_date_lte=horizon))
        resp = self._trading.get_option_contracts(GetOptionContractsRequest(
            underlying_symbols=[underlying], expiration_date_lte=horizon, limit=10_000))
        oi = {c["symbol"]: _f(c.get("open_interest")) for c in (resp or {}).get("option_contracts") or []
              if isinstance(c, dict) and "symbol" in c}
        return chain, oi

    async def poll(self, underlying: str) -> bool:
        """One chain poll; an event is queued when the chain was usable. Failures mark the source down."""
        try:
            chain, oi = await asyncio.to_thread(self._fetch, underlying)
        except Exception as exc:
            self.hub.mark_failed(NAME, api_failure(exc, f"option chain {underlying}",
                                                   self.acfg.data_url or "data.alpaca.markets").message)
            return False
        self.hub.mark_ok(NAME)
        self.polls += 1
        out = summarize(underlying, self.now_ns(), self.spot(underlying), contracts_from(chain, oi),
                        self.state[underlying])
        if out is None:
            self.hub.count("options_chain_unusable")
            return False
        snap, metrics = out
        self.hub.add_options(snap, NAME, metrics)
        return True

    async def run(self) -> None:
        """Round-robin forever; the feed's supervisor restarts it after an unexpected error."""
        while True:
            for sym in self.symbols:
                await self.poll(sym)
                await asyncio.sleep(self.interval)

    async def warm(self, start_ns: int, end_ns: int) -> int:
        return 0  # chains are snapshots: there is no history to warm up from

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
