"""``algobotd check-broker``: can this config trade? Connect, print, exit non-zero with a reason.

Prints the account, cash, buying power, positions and open orders (from the same snapshot
reconciliation uses) and, per configured symbol, whether the venue knows it as tradable and
whether the configured market-data feed returns data for it. Exit status: 0 all good,
1 something is missing (each reason printed), 78 keys rejected or missing, 69 unreachable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from algobotd.brokers.base import BrokerError
from algobotd.clock import LiveClock
from algobotd.config import EX_CONFIG, Config, ConfigError
from algobotd.symbols import SymbolIndex

EX_UNAVAILABLE = 69
NS_PER_DAY = 86_400 * 1_000_000_000


async def alpaca_data_permissions(cfg: Config) -> dict[str, str | None]:
    """symbol -> None when tradable and the feed returns a bar for it, else the reason."""
    from alpaca.data.enums import DataFeed
    from alpaca.data.historical.stock import StockHistoricalDataClient
    from alpaca.data.requests import StockLatestBarRequest
    from alpaca.trading.client import TradingClient

    from algobotd.brokers.alpaca_common import api_failure, resolve_keys, with_timeout

    a = cfg.alpaca
    key, secret = resolve_keys(a)
    trading = with_timeout(TradingClient(key, secret, paper=a.paper, url_override=a.rest_url or None))
    data = with_timeout(StockHistoricalDataClient(key, secret, raw_data=True, url_override=a.data_url or None))
    symbols = list(cfg.feed.symbols)
    out: dict[str, str | None] = {}
    try:
        latest = await asyncio.to_thread(data.get_stock_latest_bar,
                                         StockLatestBarRequest(symbol_or_symbols=symbols, feed=DataFeed(a.data_feed)))
    except Exception as exc:
        err = api_failure(exc, f"{a.data_feed} latest bars", a.data_url or "data.alpaca.markets")
        if "HTTP 401" in err.message:
            raise err from None
        return {s: f"no {a.data_feed} market data permission ({err.message})" for s in symbols}
    for s in symbols:
        try:
            asset = await asyncio.to_thread(trading.get_asset, s)
            out[s] = None if getattr(asset, "tradable", False) else "not tradable at Alpaca"
        except Exception as exc:
            out[s] = f"unknown asset ({api_failure(exc, 'asset', a.rest_url).message})"
            continue
        if s not in (latest or {}):
            out[s] = f"no {a.data_feed} bars returned"
    return out


async def check_broker(cfg: Config, out: Callable[[str], None] = print) -> int:
    from algobotd.brokers import make_broker, trading_mode

    problems: list[str] = []
    symbols = SymbolIndex(cfg.feed.symbols)
    try:
        broker = make_broker(cfg, symbols, LiveClock())
    except ConfigError as exc:
        out(f"config error: {exc}")
        return EX_CONFIG
    out(f"broker: {cfg.broker.kind} ({trading_mode(cfg)}), feed: {cfg.feed.kind}")
    try:
        if hasattr(broker, "snapshot"):
            await broker.connect()
            snap: Any = await broker.snapshot(time.time_ns() - NS_PER_DAY)
            account = getattr(broker, "account_number", "") or getattr(getattr(broker, "cfg", None), "account", "")
            out(f"account: {account or '?'}  cash {'?' if snap.cash is None else f'{snap.cash:,.2f}'}  equity "
                f"{'?' if snap.equity is None else f'{snap.equity:,.2f}'}  buying power "
                f"{'?' if snap.buying_power is None else f'{snap.buying_power:,.2f}'}")
            out("positions: " + (", ".join(f"{s} {q:+d}" for s, q in sorted(snap.positions.items())) or "none"))
            out(f"open orders: {len(snap.open_orders)}  fills in the last 24h: {len(snap.fills)}")
            if snap.buying_power is not None and snap.buying_power <= 0:
                problems.append("no buying power")
        else:
            out("account: the paper broker's book is our own store (no account to check)")
        out(f"market data ({cfg.feed.kind}):")
        for s, why in (await _data_permissions(cfg)).items():
            out(f"  {s}: {'ok' if why is None else why}")
            if why is not None:
                problems.append(f"{s}: {why}")
        if not cfg.feed.symbols and cfg.feed.kind in ("alpaca", "ib"):
            problems.append("feed.symbols is empty: nothing to trade")
    except ConfigError as exc:
        out(f"config error: {exc}")
        return EX_CONFIG
    except BrokerError as exc:
        out(f"broker error: {exc}")
        return EX_CONFIG if exc.code in ("auth", "permission") else EX_UNAVAILABLE
    finally:
        await broker.close()
    if problems:
        out("FAILED: " + "; ".join(problems))
        return 1
    out("OK")
    return 0


async def _data_permissions(cfg: Config) -> dict[str, str | None]:
    if not cfg.feed.symbols:
        return {}
    if cfg.feed.kind == "alpaca":
        return await alpaca_data_permissions(cfg)
    if cfg.feed.kind == "ib":
        try:
            from algobotd.feeds import make_feed

            feed: Any = make_feed(cfg)
        except ConfigError:
            raise
        check = getattr(feed, "check_permissions", None)
        if check is not None:
            try:
                return await check()
            finally:
                await feed.close()
        return {s: "data permission not checked for this feed" for s in cfg.feed.symbols}
    return {s: None for s in cfg.feed.symbols}  # sim/replay: our own data
