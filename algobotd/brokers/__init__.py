"""Broker factory: config -> the broker the engine sends orders to."""

from __future__ import annotations

from algobotd.brokers.base import Broker
from algobotd.clock import Clock
from algobotd.config import Config, ConfigError
from algobotd.symbols import SymbolIndex


def make_broker(cfg: Config, symbols: SymbolIndex, clock: Clock) -> Broker:
    if cfg.broker.kind == "paper":
        from algobotd.brokers.paper import PaperBroker

        return PaperBroker(cfg.broker.paper, symbols, clock.now)
    if cfg.broker.kind == "alpaca":
        from algobotd.brokers.alpaca import AlpacaBroker

        return AlpacaBroker(cfg.alpaca, clock.now)
    if cfg.broker.kind == "ib":
        from algobotd.brokers.ib import IBBroker

        return IBBroker(cfg.ib, clock.now, cfg.state_dir)
    raise ConfigError("broker.kind", f"the {cfg.broker.kind!r} broker adapter is not part of this build yet (use \"paper\")")


def trading_mode(cfg: Config) -> str:
    """sim: simulated market and paper fills; paper: real data, paper money; live: real money."""
    if cfg.broker.kind == "paper":
        return "sim" if cfg.feed.kind in ("sim", "replay") else "paper"
    if cfg.broker.kind == "alpaca" and cfg.alpaca.paper:
        return "paper"
    if cfg.broker.kind == "ib" and cfg.ib.account.startswith("DU"):
        return "paper"  # IB paper-trading accounts are DU...; anything else may be real money
    return "live"
