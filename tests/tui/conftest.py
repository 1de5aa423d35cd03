"""TUI fixtures: a real control server (FakeTarget from tests/control) on a short temp socket."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

# this dir's helpers, and the engine test double that lives with the control tests (shared,
# not copied); names are prefixed (ctl_*, tui_*) so they cannot clash on sys.path
HERE = Path(__file__).resolve().parent
for _d in (HERE, HERE.parent / "control"):
    if str(_d) not in sys.path:
        sys.path.insert(0, str(_d))

from ctl_fake_target import FakeTarget  # noqa: E402

from algobotd.control.server import ControlServer, serve  # noqa: E402


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
