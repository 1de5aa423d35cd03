"""A real datagram socket standing in for systemd's NOTIFY_SOCKET, read on a thread."""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path


class NotifySocket:
    def __init__(self) -> None:
        # AF_UNIX paths are limited to 108 bytes: /tmp is always short enough
        self.dir = Path(tempfile.mkdtemp(prefix="abn-", dir="/tmp"))
        self.path = self.dir / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []  # (monotonic arrival, datagram text)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append((time.monotonic(), data.decode()))

    def texts(self) -> list[str]:
        with self._lock:
            return [m for _, m in self.messages]

    def fields(self) -> list[dict[str, str]]:
        return [dict(line.split("=", 1) for line in m.splitlines()) for m in self.texts()]

    def count(self, key: str) -> int:
        return sum(1 for f in self.fields() if key in f)

    def wait_for(self, predicate, timeout: float = 60.0, what: str = "message", proc=None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.fields()):
                return
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"daemon exited with {proc.returncode} while waiting for {what}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; got {self.texts()[-20:]}")

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(2)
        self.path.unlink(missing_ok=True)
        self.dir.rmdir()
