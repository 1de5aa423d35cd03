"""Where the live store lives (kept apart from the daemon so light commands import little)."""

from __future__ import annotations

from pathlib import Path

from algobotd.config import Config

STORE_FILE = "algobot.duckdb"


def store_path(cfg: Config) -> Path:
    return cfg.state_dir / STORE_FILE
