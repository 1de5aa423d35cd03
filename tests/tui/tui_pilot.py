"""Pilot helpers shared by the TUI tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Static

from algobotd.control import protocol as p
from tui.app import AlgobotApp

FIXED_NOW = datetime(2024, 1, 2, 15, 31, 0, tzinfo=UTC)


def make_app(path: Path) -> AlgobotApp:
    return AlgobotApp(path, clock=lambda: FIXED_NOW, backoff=(0.05, 0.3))


async def wait_until(pilot: Pilot[None], cond: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await pilot.pause(0.02)


async def wait_loaded(pilot: Pilot[None], app: AlgobotApp) -> None:
    await wait_until(pilot, lambda: app.topics_seen >= set(p.TOPIC_TYPES), what="all topics")
    await pilot.pause()
    await pilot.pause()


def banner_text(app: AlgobotApp) -> str:
    return str(app.query_one("#banner", Static).content)


def header_text(app: AlgobotApp) -> str:
    return str(app.query_one("#header", Static).content)
