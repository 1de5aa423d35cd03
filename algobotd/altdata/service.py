"""Config -> hub and sources (called once, from ``assembly.assemble``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import structlog

from algobotd.altdata.hub import AltHub
from algobotd.altdata.runtime import AltData
from algobotd.altdata.sentiment import make_scorer
from algobotd.altdata.social import DropDirectory
from algobotd.config import Config, ConfigError
from algobotd.domain import NS_PER_SECOND
from algobotd.feeds.base import Feed

log = structlog.get_logger(__name__)


def spot_lookup(hub: AltHub) -> Any:
    """The latest close of a symbol from the last batch the hub attached events to (NaN if none)."""

    def spot(symbol: str) -> float:
        b = hub.last_batch
        if b is None or symbol not in b.symbols:
            return math.nan
        i = b.symbols.index(symbol)
        return float(b.close[i]) if b.valid[i] and np.isfinite(b.close[i]) else math.nan

    return spot


def news_stream_url(explicit: str, data_stream_url: str) -> str:
    """The news websocket: explicit, else on the same host as an overridden data stream (a proxy
    or a test server must never be bypassed towards Alpaca's public host), else alpaca-py's default."""
    if explicit or not data_stream_url:
        return explicit
    parts = urlsplit(data_stream_url)
    return urlunsplit((parts.scheme, parts.netloc, "/v1beta1/news", "", ""))


def build_altdata(cfg: Config, feed: Feed, store: Any, watch: bool = True) -> AltData | None:
    """Hub and sources for the configured feed, or None when ``altdata.enabled`` is off.

    ``watch`` False (backtests): no drop-directory watcher and no network pollers; a backtest
    must not consume the live daemon's social files nor hit broker APIs.
    """
    a = cfg.altdata
    if not a.enabled:
        return None
    try:
        scorer = make_scorer(a.scorer, a.transformer_path, a.headline_weight)
    except (FileNotFoundError, RuntimeError, ValueError) as exc:
        raise ConfigError("altdata.transformer_path", str(exc)) from None
    hub = AltHub(scorer, store)
    alt = AltData(hub, retry_seconds=a.retry_seconds)
    if not watch:
        return alt
    social = DropDirectory(hub, Path(a.social_dir) if a.social_dir else cfg.state_dir / "social",
                           a.social_poll_seconds)
    alt.loops.append(("social", social.run))
    alt.social = social
    if cfg.feed.kind == "alpaca":
        if a.news:
            from algobotd.altdata.alpaca_news import AlpacaNews

            news = AlpacaNews(hub, feed.symbols, cfg.alpaca, news_stream_url(a.news_stream_url, cfg.alpaca.data_stream_url),
                              history_ns=int(a.news_history_hours * 3600 * NS_PER_SECOND))
            alt.sources.append(news)
        if a.options:
            from algobotd.altdata.alpaca_options import AlpacaOptions

            opts = AlpacaOptions(hub, feed.symbols, cfg.alpaca, a.options_poll_seconds,
                                 a.options_requests_per_minute, spot_lookup(hub))
            alt.loops.append(("alpaca_options", opts.run))
    if cfg.feed.kind == "ib" and a.options:
        from algobotd.altdata.ib_options import IBOptions

        ib_opts = IBOptions(hub, feed, a.options_poll_seconds, spot_lookup(hub))
        alt.loops.append(("ib_options", ib_opts.run))
        alt.sources.append(ib_opts)  # closed with the others (cancels its market-data lines)
    if cfg.feed.kind == "ib" and a.news and a.ib_news_providers:
        from algobotd.altdata.ib_news import IBNews

        alt.sources.append(IBNews(hub, feed, a.ib_news_providers,
                              history_ns=int(a.news_history_hours * 3600 * NS_PER_SECOND)))
    if a.form4:
        if not a.form4_user_agent:
            raise ConfigError("altdata.form4_user_agent", "EDGAR requires a declared user agent (\"Name email\")")
        from algobotd.altdata.edgar import EdgarForm4

        form4 = EdgarForm4(hub, feed.symbols, a.form4_user_agent, a.form4_poll_seconds)
        alt.loops.append(("sec_form4", form4.run))
        alt.form4 = form4
    return alt
