"""IB news for the feed's symbols, where the account subscribes to the providers.

- Live: ``reqMktData(contract, "mdoff,292:<providers>")`` per symbol on the feed's own (read-only)
  connection; IB sends news ticks (msg 84). ib_async's ``tickNewsEvent`` drops the request id, so
  the symbol would be lost: we wrap ``wrapper.tickNews`` (looked up per message by the decoder)
  to map the request id to its symbol, then call the original.
- Warm-up: ``reqHistoricalNewsAsync`` per contract (300 headlines at most, IB's cap). ib_async
  returns None on its 4-second timeout: that is an error (source down), never "no news".
- Headlines may carry IB metadata in braces (``{A:800015:L:en:K:0.97:C:0.9}text``): stripped.

Only ib_async's async / non-blocking calls are used; nothing blocks the daemon loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Any

import structlog
from ib_async import RequestError

from algobotd.altdata.hub import AltHub
from algobotd.domain import NS_PER_SECOND, News

log = structlog.get_logger(__name__)
NAME = "ib_news"
_META = re.compile(r"^\{[^}]*\}\s*")
MAX_HISTORY = 300  # IB's cap on totalResults


def clean(headline: str) -> str:
    return _META.sub("", headline or "").strip()


def utc_ns(t: dt.datetime) -> int:
    # IB historical news times are GMT; ib_async parses them to naive datetimes
    return int((t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp() * 1e6) * 1000


class IBNews:
    def __init__(self, hub: AltHub, feed: Any, providers: str, history_ns: int = 0) -> None:
        self.hub, self.feed, self.providers = hub, feed, providers
        self.history_ns = history_ns
        self._req_symbol: dict[int, str] = {}
        self._tickers: list[Any] = []
        self._orig: Any = None
        hub.source(NAME, "news")

    async def warm(self, start_ns: int, end_ns: int) -> int:
        start_ns = min(start_ns, end_ns - self.history_ns)
        start = dt.datetime.fromtimestamp(start_ns / NS_PER_SECOND, tz=dt.UTC).replace(tzinfo=None)
        end = dt.datetime.fromtimestamp(end_ns / NS_PER_SECOND, tz=dt.UTC).replace(tzinfo=None)
        new = 0
        try:
            await self.feed._ensure_connected()
            for sym, contract in self.feed.contracts.items():
                rows = await self.feed.ib.reqHistoricalNewsAsync(contract.conId, self.providers, start, end, MAX_HISTORY)
                if rows is None:
                    raise TimeoutError(f"historical news for {sym}: no answer")
                items = [News(f"ib:{r.providerCode}:{r.articleId}", utc_ns(r.time), (sym,), clean(r.headline),
                              "", f"ib:{r.providerCode}") for r in rows]
                items = await asyncio.to_thread(self.hub.score, items)  # a batch: off the loop
                new += self.hub.add_news(items, NAME, prescored_by=self.hub.scorer.name)
        except (RequestError, TimeoutError, ConnectionError, OSError) as exc:
            self.hub.mark_failed(NAME, f"{type(exc).__name__}: {exc}")
            return new
        self.hub.mark_ok(NAME)
        return new

    def _tick_news(self, req_id: int, ts_ms: int, provider: str, article_id: str, headline: str,
                   extra: str) -> None:
        sym = self._req_symbol.get(req_id)
        if sym is None:
            self.hub.count("ib_news_unknown_request")
        elif ts_ms <= 0:
            self.hub.count("ib_news_bad_ts")
        else:
            self.hub.add_news([News(f"ib:{provider}:{article_id}", int(ts_ms) * 1_000_000, (sym,), clean(headline),
                                    "", f"ib:{provider}")], NAME)
            self.hub.mark_ok(NAME)
        if self._orig is not None:
            self._orig(req_id, ts_ms, provider, article_id, headline, extra)

    async def start(self) -> None:
        await self.feed._ensure_connected()
        ib = self.feed.ib
        if self._orig is None:
            self._orig = ib.wrapper.tickNews
            ib.wrapper.tickNews = self._tick_news
            # after a reconnect ("data lost") the gateway forgot our requests: subscribe again
            self.feed.session.on_restored.append(self._on_restored)
        self._subscribe()

    async def _on_restored(self, resubscribe: bool) -> None:
        if resubscribe and self._orig is not None:
            self._tickers.clear()
            self._req_symbol.clear()
            self._subscribe()

    def _subscribe(self) -> None:
        ib = self.feed.ib
        for sym, contract in self.feed.contracts.items():
            ticker = ib.reqMktData(contract, f"mdoff,292:{self.providers}")
            self._tickers.append(ticker)
            req_id = max((r for r, t in ib.wrapper.reqId2Ticker.items() if t is ticker), default=None)  # the newest
            if req_id is not None:
                self._req_symbol[req_id] = sym
        self.hub.mark_ok(NAME)

    async def close(self) -> None:
        if self._on_restored in self.feed.session.on_restored:
            self.feed.session.on_restored.remove(self._on_restored)
        ib = self.feed.ib
        for t in self._tickers:
            try:
                ib.cancelMktData(t.contract)
            except Exception:  # the connection may already be gone at shutdown
                pass
        self._tickers.clear()
        if self._orig is not None:
            ib.wrapper.tickNews = self._orig
            self._orig = None
