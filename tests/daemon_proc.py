"""Helpers to drive a real `algobotd run` process and talk to its control socket."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, algobotd_cmd


class DaemonProcess:
    def __init__(self, state_dir: Path, *overrides: str, env: dict[str, str] | None = None) -> None:
        self.state_dir = state_dir
        self.socket = state_dir / "algobotd.sock"
        args = ["run", "--state-dir", str(state_dir)]
        for o in overrides:
            args += ["--set", o]
        self.log = open(state_dir.parent / f"{state_dir.name}-daemon.log", "ab")
        self.proc = subprocess.Popen(algobotd_cmd(*args), cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited early with {self.proc.returncode}: {self.log_text()}")
            if self.socket.exists():
                try:
                    self.call("status")
                    return
                except OSError:
                    pass
            time.sleep(0.1)
        raise AssertionError(f"daemon not ready after {timeout}s: {self.log_text()}")

    def call(self, method: str, **params: Any) -> Any:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(self.socket))
            f = s.makefile("rwb")
            for i, (m, p) in enumerate([("hello", {"version": 1}), (method, params)], 1):
                f.write(json.dumps({"id": i, "method": m, "params": p}).encode() + b"\n")
                f.flush()
                reply = json.loads(f.readline())
                if "error" in reply:
                    raise RuntimeError(reply["error"])
            return reply["result"]

    def wait_until(self, predicate, timeout: float = 60.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}: {self.log_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()

    def log_text(self) -> str:
        self.log.flush()
        return (self.state_dir.parent / f"{self.state_dir.name}-daemon.log").read_text()[-3000:]


def clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for k in ("JOURNAL_STREAM", "RUNTIME_DIRECTORY", "NOTIFY_SOCKET", "WATCHDOG_USEC"):
        env.pop(k, None)
    return env
