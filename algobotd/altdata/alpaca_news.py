"""Alpaca news: warm-up history from ``NewsClient`` (REST, in a thread) and live articles from
``NewsDataStream`` run as a task on the daemon's loop (the same pattern as the bar stream in
``algobotd/feeds/alpaca.py``: subscribe before the task starts, never ``run()``).

A failing REST call or a lost stream marks the source down in the hub (news features NaN, one
warning); the stream reconnects by itself (alpaca-py), and when alpaca-py gives up (its loop
returns on "insufficient subscription") the shared ``StreamSupervisor`` starts a fresh one with
backoff; the hub marks the source up again once it is back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import structlog
from alpaca.data.historical.news import NewsClient
from alpaca.data.live.news import NewsDataStream
from alpaca.data.requests import NewsRequest

from algobotd.altdata.hub import AltHub
from algobotd.brokers.alpaca_common import (
    StreamStateMixin,
    StreamSupervisor,
    api_failure,
    resolve_keys,
    with_timeout,
    ws_params,
)
from algobotd.config import AlpacaConfig
from algobotd.domain import News

log = structlog.get_logger(__name__)
NAME = "alpaca_news"
# alpaca-py pages news 50 at a time: 1,000 articles = 20 requests, well inside 200/min; newest
# first, so a busy universe keeps the most recent articles of the warm-up window
HISTORY_LIMIT = 1000


def ts_ns(v: Any) -> int:
    """created_at as the stream (msgpack Timestamp) or REST (RFC 3339 string) sends it."""
    if hasattr(v, "to_unix_nano"):
        return int(v.to_unix_nano())
    if isinstance(v, dt.datetime):
        return int((v if v.tzinfo else v.replace(tzinfo=dt.UTC)).timestamp() * 1e6) * 1000
    if isinstance(v, str) and v:
        t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        return int((t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp() * 1e6) * 1000
    return 0


def to_news(m: dict[str, Any], universe: frozenset[str]) -> News | None:
    """An Alpaca article -> News restricted to our symbols (None when it names none of them)."""
    syms = tuple(s for s in (m.get("symbols") or ()) if s in universe)
    if not syms or m.get("id") in (None, ""):
        return None
    return News(id=f"alpaca:{m['id']}", ts=ts_ns(m.get("created_at")), symbols=syms,
                headline=str(m.get("headline") or "")[:1000], summary=str(m.get("summary") or "")[:4000],
                source=f"alpaca:{m.get('source') or 'news'}")


class _Stream(StreamStateMixin, NewsDataStream):
    """NewsDataStream that reports (dis)connections and keeps the auth error."""


class AlpacaNews:
    """History + live news for ``symbols``; ``stream_url`` empty = alpaca-py's default."""

    def __init__(self, hub: AltHub, symbols: tuple[str, ...], acfg: AlpacaConfig, stream_url: str = "",
                 live: bool = True, history_ns: int = 0) -> None:
        self.hub, self.symbols, self.acfg = hub, symbols, acfg
        self.history_ns = history_ns  # warm-up reaches back at least this far before the first bar's end
        self.universe = frozenset(symbols)
        self.stream_url, self.live = stream_url, live
        self._keys = resolve_keys(acfg)
        self._sup: StreamSupervisor | None = None  # the news stream, restarted when alpaca-py gives up
        self._closing = False
        self.connected = False
        hub.source(NAME, "news")

    # --- history ----------------------------------------------------------------------------------

    def _fetch(self, start_ns: int, end_ns: int) -> list[dict[str, Any]]:
        key, secret = self._keys
        client = with_timeout(NewsClient(key, secret, raw_data=True, url_override=self.acfg.data_url or None))
        req = NewsRequest(symbols=",".join(self.symbols), start=dt.datetime.fromtimestamp(start_ns / 1e9, tz=dt.UTC),
                          end=dt.datetime.fromtimestamp(end_ns / 1e9, tz=dt.UTC), limit=HISTORY_LIMIT, sort="desc")
        raw = client.get_news(req)
        return list((raw or {}).get("news", []))

    async def warm(self, start_ns: int, end_ns: int) -> int:
        """Articles published in [start, end] (REST, off the loop); returns how many were new."""
        start_ns = min(start_ns, end_ns - self.history_ns)
        try:
            rows = await asyncio.to_thread(self._fetch, start_ns, end_ns)
        except Exception as exc:
            err = api_failure(exc, "news history", self.acfg.data_url or "data.alpaca.markets")
            self.hub.mark_failed(NAME, err.message)
            return 0
        items = [n for n in (to_news(m, self.universe) for m in rows) if n is not None]
        self.hub.mark_ok(NAME)
        items = await asyncio.to_thread(self.hub.score, items)  # a batch: off the loop
        return self.hub.add_news(items, NAME, prescored_by=self.hub.scorer.name)

    # --- live -------------------------------------------------------------------------------------

    def _on_state(self, up: bool) -> None:
        self.connected = up
        if up:
            self.hub.mark_ok(NAME)
        elif not self._closing:
            stream = self._sup.stream if self._sup is not None else None
            auth = getattr(stream, "auth_error", None)
            self.hub.mark_failed(NAME, f"news stream auth: {auth}" if auth else "news stream lost; reconnecting")

    async def _on_news(self, m: Any) -> None:
        item = to_news(m if isinstance(m, dict) else dict(m), self.universe)
        if item is None:
            self.hub.count("alpaca_news_foreign_symbols")
            return
        if item.ts <= 0:
            self.hub.count("alpaca_news_bad_ts")
            return
        self.hub.add_news([item], NAME)

    async def start(self) -> None:
        if not self.live or self._sup is not None:
            return
        self._closing = False
        self._sup = StreamSupervisor("alpaca-news-stream", self._new_stream, lambda: self._on_state(False),
                                     (self.acfg.reconnect_initial_seconds, self.acfg.reconnect_max_seconds))
        self._sup.start()
        self._sup.supervise()  # a news outage is no start-up failure: NaN features until it is back

    def _new_stream(self) -> _Stream:
        key, secret = self._keys
        s = _Stream(self._on_state, key, secret, raw_data=True, url_override=self.stream_url or None,
                    websocket_params=ws_params(self.acfg))
        s._reconnect_min_backoff, s._reconnect_max_backoff = (self.acfg.reconnect_initial_seconds,
                                                              self.acfg.reconnect_max_seconds)
        s.subscribe_news(self._on_news, *self.symbols)  # before the task: see module docstring
        return s

    async def wait_connected(self, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while not self.connected and time.monotonic() < end:
            await asyncio.sleep(0.02)
        return self.connected

    async def close(self) -> None:
        self._closing = True
        if self._sup is not None:
            await self._sup.close()
            self._sup = None
        self.connected = False
