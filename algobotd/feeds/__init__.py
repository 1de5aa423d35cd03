"""Feed factory: config -> the feed the engine pulls batches from."""

from __future__ import annotations

from algobotd.config import Config, ConfigError
from algobotd.feeds.base import Feed


def make_feed(cfg: Config, replay_path: str | None = None) -> Feed:
    kind = "replay" if replay_path else cfg.feed.kind
    if kind == "sim":
        from algobotd.feeds.sim import SimFeed

        return SimFeed(cfg.feed)
    if kind == "replay":
        from algobotd.feeds.replay import ReplayFeed

        return ReplayFeed(cfg.feed, replay_path or cfg.feed.replay.path)
    if kind == "alpaca":
        from algobotd.feeds.alpaca import AlpacaFeed

        return AlpacaFeed(cfg.feed, cfg.alpaca)
    if kind == "ib":
        from algobotd.feeds.ib import IBFeed

        return IBFeed(cfg.feed, cfg.ib)
    raise ConfigError("feed.kind", f"the {kind!r} feed adapter is not part of this build yet (use \"sim\" or \"replay\")")


def is_simulated(cfg: Config, replay_path: str | None = None) -> bool:
    """Simulated feeds run on simulated time (the bar timestamps), live ones on the wall clock."""
    return bool(replay_path) or cfg.feed.kind in ("sim", "replay")
