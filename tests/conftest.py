from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def algobotd_cmd(*args: str) -> list[str]:
    """The CLI as a real process, with this interpreter (no reliance on PATH)."""
    return [sys.executable, "-m", "algobotd", *args]


@pytest.fixture
def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("JOURNAL_STREAM", None)
    env.pop("RUNTIME_DIRECTORY", None)
    env.pop("NOTIFY_SOCKET", None)
    return env


async def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``cond`` on the event loop until it holds; fail the test after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
