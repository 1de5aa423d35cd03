"""sd_notify over the datagram socket systemd hands us in ``NOTIFY_SOCKET``.

A few lines instead of a dependency: one ``sendto`` per message. Outside systemd (no
``NOTIFY_SOCKET``) every call is a cheap no-op, so the daemon calls these unconditionally.

Watchdog: systemd sets ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``) when the unit has
``WatchdogSec=``. :meth:`Notifier.watchdog_loop` pings from a task *on the event loop* at half
that interval, so a blocked or wedged loop stops the pings and systemd restarts the daemon.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger(__name__)


def _address(raw: str) -> str | bytes:
    # "@name" is a Linux abstract-namespace socket: a leading NUL byte on the wire
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    return raw


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET", "")
        self.address: str | bytes | None = _address(raw) if raw else None
        self._sock: socket.socket | None = None
        self.watchdog_seconds = self._watchdog_seconds(env)
        self.sent = 0  # messages handed to the socket, for status

    @staticmethod
    def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
        usec = env.get("WATCHDOG_USEC", "")
        if not usec.isdigit() or int(usec) == 0:
            return None
        pid = env.get("WATCHDOG_PID", "")
        if pid and pid != str(os.getpid()):
            return None  # meant for another process (e.g. a wrapper script that exec'd us)
        return int(usec) / 1_000_000

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields as one datagram; False when not under systemd or on error."""
        if self.address is None:
            return False
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)
        try:
            self._sock.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:
            # systemd gone or socket full: never let notification trouble stop trading
            log.warning("sd_notify failed", error=str(exc))
            return False
        self.sent += 1
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []), f"MAINPID={os.getpid()}")

    def status(self, text: str) -> bool:
        # STATUS is one line in systemctl status: newlines would split the datagram's fields
        return self.notify(f"STATUS={text.replace(chr(10), ' ')}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def reloading(self) -> bool:
        # MONOTONIC_USEC lets Type=notify-reload units match this to the reload request
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    async def watchdog_loop(self, healthy: Callable[[], bool] = lambda: True,
                            interval: float | None = None) -> None:
        """Ping at half ``WATCHDOG_USEC`` while ``healthy()``; returns at once without a watchdog."""
        period = interval if interval is not None else (self.watchdog_seconds or 0) / 2
        if period <= 0 or not self.enabled:
            return
        while True:
            if healthy():
                self.watchdog()
            else:
                log.warning("watchdog ping withheld: daemon unhealthy")
            await asyncio.sleep(period)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
