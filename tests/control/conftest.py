"""Fixtures: a real control server on a short temp socket, in front of ``FakeTarget``."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

# helper modules next to this file (import-mode=importlib does not add test dirs to sys.path)
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from ctl_fake_target import FakeTarget

from algobotd.control.client import ControlClient
from algobotd.control.server import ControlServer, serve


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # tmp_path is often too deep for AF_UNIX's 108-byte limit; /tmp is always short
    d = Path(tempfile.mkdtemp(prefix="abc-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def sock_path(sock_dir: Path) -> Path:
    return sock_dir / "ctl.sock"


@pytest.fixture
def target() -> FakeTarget:
    return FakeTarget()


@pytest.fixture
async def server(target: FakeTarget, sock_path: Path) -> AsyncIterator[ControlServer]:
    srv = await serve(target, sock_path, heartbeat_s=None)
    yield srv
    await srv.close()


@pytest.fixture
async def client(server: ControlServer) -> AsyncIterator[ControlClient]:
    c = await ControlClient.connect(server.path, client="pytest")
    yield c
    await c.close()
