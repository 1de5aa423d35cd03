from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _baseline_default_config() -> Path:
    """config.toml with ``model.kind = "baseline"``: the shipped default is the ensemble, which trains
    on first start; tests not about the ensemble must not. ALGOBOT_CONFIG reaches subprocesses too;
    ensemble tests ask for ``model.kind = "ensemble"`` explicitly."""
    text, n = re.subn(r'(?m)^kind = "ensemble"', 'kind = "baseline"', (ROOT / "config.toml").read_text())
    assert n == 1, "config.toml: expected one [model] line kind = \"ensemble\""
    path = Path(tempfile.mkdtemp(prefix="algobot-test-config-")) / "config.toml"
    path.write_text(text)
    return path


os.environ["ALGOBOT_CONFIG"] = str(_baseline_default_config())


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
