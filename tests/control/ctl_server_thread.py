"""The control server on its own event loop in a thread, for blocking clients (hypothesis,
the synchronous CLI entry point)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ctl_fake_target import FakeTarget

from algobotd.control.cli import run_ctl
from algobotd.control.server import ControlServer, serve


class ServerThread:
    """The server on its own event loop, so hypothesis can drive it with a blocking client."""

    def __init__(self, path: Path, **serve_kw: Any) -> None:
        self.path = path
        self.target = FakeTarget()
        self.loop = asyncio.new_event_loop()
        self.server: ControlServer | None = None
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)

            async def start() -> None:
                self.server = await serve(self.target, path, heartbeat_s=None, **serve_kw)
                ready.set()

            self.loop.run_until_complete(start())
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def stop(self) -> None:
        assert self.server is not None
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextlib.contextmanager
def running_server() -> Iterator[ServerThread]:
    """A server on a socket in a fresh short /tmp directory (socket paths are length-limited)."""
    d = Path(tempfile.mkdtemp(prefix="abl-", dir="/tmp"))
    srv = ServerThread(d / "ctl.sock")
    try:
        yield srv
    finally:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)


def ctl(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    """``algobotd ctl`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = run_ctl(argv, stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()
