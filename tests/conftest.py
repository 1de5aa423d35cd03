from __future__ import annotations

import os
import sys
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
