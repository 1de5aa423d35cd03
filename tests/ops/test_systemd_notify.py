"""sd_notify against a real datagram socket: in process, and from a real daemon (READY, STATUS,
WATCHDOG, RELOADING on SIGHUP with a valid and an invalid config, STOPPING)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ops_notify import NotifySocket

from algobotd.ops.systemd import Notifier
from tests.conftest import ROOT, algobotd_cmd
from tests.daemon_proc import DaemonProcess, clean_env


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    s = NotifySocket()
    yield s
    s.close()


def test_outside_systemd_every_call_is_a_no_op() -> None:
    n = Notifier(env={})
    assert not n.enabled and n.ready("x") is False and n.watchdog() is False
    assert n.watchdog_seconds is None


def test_watchdog_interval_only_for_this_pid() -> None:
    assert Notifier(env={"WATCHDOG_USEC": "30000000"}).watchdog_seconds == 30.0
    assert Notifier(env={"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}).watchdog_seconds == 30.0
    assert Notifier(env={"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_seconds is None
    assert Notifier(env={"WATCHDOG_USEC": "junk"}).watchdog_seconds is None


async def test_messages_in_order_and_pings_stop_while_the_loop_is_blocked(notify_socket: NotifySocket) -> None:
    n = Notifier(env={"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "100000"})
    assert n.watchdog_seconds == 0.1
    n.ready("ACTIVE equity=1.00")
    task = asyncio.create_task(n.watchdog_loop())  # pings every 50 ms, from the event loop
    await asyncio.sleep(0.3)
    notify_socket.wait_for(lambda f: sum("WATCHDOG" in x for x in f) >= 2, 10, "watchdog pings")

    def block_the_loop() -> tuple[int, int]:
        time.sleep(0.1)  # let any ping already in the socket be read
        before = notify_socket.count("WATCHDOG")
        time.sleep(0.6)  # twelve ping periods with the loop wedged
        return before, notify_socket.count("WATCHDOG")

    before, after = block_the_loop()  # runs on the loop's thread: nothing else on the loop can run
    assert after == before, "a blocked loop must not ping the watchdog"
    await asyncio.sleep(0.3)
    notify_socket.wait_for(lambda f: sum("WATCHDOG" in x for x in f) > after, 10, "pings after the loop recovers")
    task.cancel()
    n.reloading()
    n.stopping()
    n.close()
    notify_socket.wait_for(lambda f: bool(f) and "STOPPING" in f[-1], 10, "STOPPING=1")
    f = notify_socket.fields()
    assert f[0]["READY"] == "1" and f[0]["STATUS"] == "ACTIVE equity=1.00" and f[0]["MAINPID"] == str(os.getpid())
    assert "RELOADING" in f[-2] and int(f[-2]["MONOTONIC_USEC"]) > 0
    assert f[-1] == {"STOPPING": "1"}


def write_config(path: Path, daily_loss: float, extra: str = "") -> None:
    path.write_text(
        "[feed.sim]\nsymbols = 5\nspeed = 300.0\n\n"
        "[schedule]\nstatus_seconds = 0.5\n\n"
        f"[risk]\ndaily_loss_pct = {daily_loss}\n{extra}"
    )


class ConfigDaemon(DaemonProcess):
    """DaemonProcess with --config, so that SIGHUP has a file to re-read."""

    def __init__(self, state_dir: Path, config: Path, env: dict[str, str]) -> None:
        import subprocess

        self.state_dir = state_dir
        self.socket = state_dir / "algobotd.sock"
        self.log = open(state_dir.parent / f"{state_dir.name}-daemon.log", "ab")
        self.proc = subprocess.Popen(algobotd_cmd("run", "--config", str(config), "--state-dir", str(state_dir)),
                                     cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)


def daily_loss_threshold(d: DaemonProcess) -> float | None:
    rows = [b for b in d.call("risk")["breakers"] if b["name"] == "daily_loss"]
    return rows[0]["threshold"] if rows else None


@pytest.mark.timeout(180)
def test_daemon_notifies_systemd_and_reloads_on_sighup(tmp_path: Path, notify_socket: NotifySocket) -> None:
    state = tmp_path / "state"
    state.mkdir()
    config = tmp_path / "algobot.toml"
    write_config(config, 0.05)
    env = clean_env() | {"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "1000000",
                         "JOURNAL_STREAM": "8:1234"}
    d = ConfigDaemon(state, config, env)
    try:
        notify_socket.wait_for(lambda f: any("READY" in x for x in f), 90, "READY=1", d.proc)
        first = notify_socket.fields()[0]
        # READY is the first message, sent once reconciled and warmed up (a last bar exists)
        assert first["READY"] == "1" and "last_bar=none" not in first["STATUS"]
        assert first["MAINPID"] == str(d.proc.pid)
        d.wait_ready()
        notify_socket.wait_for(lambda f: sum("WATCHDOG" in x for x in f) >= 3, 30, "watchdog pings")
        notify_socket.wait_for(lambda f: any(x.get("STATUS", "").startswith("ACTIVE equity=") for x in f[1:]),
                               30, "STATUS refresh")
        ops = d.call("status")["ops"]
        assert ops["systemd"] == {"notify": True, "watchdog_seconds": 1.0}
        assert {j["id"] for j in ops["jobs"]} >= {"session_open", "nightly_retrain", "reconcile", "monitor"}
        assert "backlog" in ops["alerts"]
        d.wait_until(lambda: daily_loss_threshold(d) == 0.05, 30, "breaker readings")

        # valid new config: risk limits apply without a restart
        write_config(config, 0.07)
        readies = notify_socket.count("READY")
        d.proc.send_signal(signal.SIGHUP)
        reload = d.wait_until(lambda: d.call("status")["ops"]["last_reload"], 30, "reload result")
        assert reload == {"ok": True, "applied": ["risk"], "restart_required": []}
        d.wait_until(lambda: daily_loss_threshold(d) == 0.07, 30, "new daily-loss limit in force")
        notify_socket.wait_for(lambda f: sum("READY" in x for x in f) > readies, 10, "READY after reload")
        texts = notify_socket.texts()
        assert any(t.startswith("RELOADING=1") for t in texts)

        # invalid new config: rejected with the key named, the old one stays in force
        write_config(config, 1.5)
        d.proc.send_signal(signal.SIGHUP)
        reload = d.wait_until(lambda: (r := d.call("status")["ops"]["last_reload"]) and not r["ok"] and r, 30,
                              "rejected reload")
        assert "risk.daily_loss_pct" in reload["error"]
        assert daily_loss_threshold(d) == 0.07 and d.proc.poll() is None
        assert sum(t.startswith("RELOADING=1") for t in notify_socket.texts()) == 2
        log_text = d.log_text()
        assert '"event": "config reload rejected: the old config stays in force"' in log_text  # JSON for journald
    finally:
        code = d.stop(signal.SIGTERM, timeout=30)
    assert code == 0
    assert "STOPPING" in notify_socket.fields()[-1]
