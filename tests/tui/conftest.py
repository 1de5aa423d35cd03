"""TUI fixtures: a real control server (FakeTarget from tests/control) on a short temp socket."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

# the engine test double lives with the control tests; share it rather than copy it
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "control"))

from fake_target import FakeTarget  # noqa: E402

from algobotd.control.server import ControlServer, serve  # noqa: E402

FIXED_NOW = datetime(2024, 1, 2, 15, 31, 0, tzinfo=UTC)


@pytest.fixture
def sock_path() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="abt-", dir="/tmp"))
    yield d / "ctl.sock"
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def target() -> FakeTarget:
    return FakeTarget()


@pytest.fixture
async def server(target: FakeTarget, sock_path: Path) -> AsyncIterator[ControlServer]:
    srv = await serve(target, sock_path, heartbeat_s=None)
    yield srv
    await srv.close()
