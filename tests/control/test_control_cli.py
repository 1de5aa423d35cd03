"""``algobotd ctl`` (run_ctl) against a real server running in a background thread."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from ctl_server_thread import ServerThread, ctl, running_server

from algobotd.config import EX_CONFIG
from algobotd.domain import TradingState

STATUS_KEYS = {
    "mode", "trading_state", "trading_state_reason", "equity", "cash", "day_pnl", "drawdown",
    "positions", "open_orders", "last_bar_ts", "feed_connected", "broker_connected", "model_id",
}


@pytest.fixture
def daemon() -> Iterator[ServerThread]:
    with running_server() as srv:
        yield srv


def test_status_json_is_the_status_object(daemon: ServerThread) -> None:
    code, out, _ = ctl(["--socket", str(daemon.path), "status", "--json"])
    assert code == 0
    assert out.count("\n") == 1
    obj = json.loads(out)
    assert set(obj) >= STATUS_KEYS
    assert obj == {k: v for k, v in daemon.target.status().items()}  # exactly what the daemon sent


def test_status_human(daemon: ServerThread) -> None:
    code, out, _ = ctl(["status", "--socket", str(daemon.path)])  # options after the command too
    assert code == 0
    assert "trading_state" in out and "ACTIVE" in out and "equity" in out


@pytest.mark.parametrize("cmd", ["positions", "orders", "predictions", "risk", "events"])
def test_reads(daemon: ServerThread, cmd: str) -> None:
    code, out, _ = ctl(["--socket", str(daemon.path), cmd])
    assert code == 0 and out.strip()
    code, out, _ = ctl(["--socket", str(daemon.path), "--json", cmd])
    assert code == 0 and isinstance(json.loads(out), dict)


def test_positions_table(daemon: ServerThread) -> None:
    code, out, _ = ctl(["--socket", str(daemon.path), "positions"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["SYMBOL", "QTY", "AVG_COST", "LAST"]
    assert len(lines) == 1 + len(daemon.target.book)


def test_halt_needs_no_confirmation(daemon: ServerThread) -> None:
    code, out, _ = ctl(["--socket", str(daemon.path), "halt", "--reason", "fat finger"])
    assert code == 0 and "HALTED" in out
    assert daemon.target.state is TradingState.HALTED and daemon.target.reason == "fat finger"


def test_resume_asks(daemon: ServerThread) -> None:
    ctl(["--socket", str(daemon.path), "halt"])
    code, _, err = ctl(["--socket", str(daemon.path), "resume"], stdin="no\n")
    assert code == 1 and "not confirmed" in err
    assert daemon.target.state is TradingState.HALTED
    code, _, err = ctl(["--socket", str(daemon.path), "resume"], stdin="")  # EOF: not confirmed
    assert code == 1
    code, _, err = ctl(["--socket", str(daemon.path), "resume"], stdin="RESUME\n")
    assert code == 0 and "Type RESUME" in err
    assert daemon.target.state is TradingState.ACTIVE


def test_resume_yes_and_flatten(daemon: ServerThread) -> None:
    ctl(["--socket", str(daemon.path), "halt"])
    assert ctl(["--socket", str(daemon.path), "resume", "--yes"])[0] == 0
    assert daemon.target.state is TradingState.ACTIVE
    code, _, _ = ctl(["--socket", str(daemon.path), "flatten"], stdin="y\n")
    assert code == 0 and not daemon.target.book


def test_cancel_all_retrain_reduce(daemon: ServerThread) -> None:
    code, out, _ = ctl(["--socket", str(daemon.path), "--json", "cancel-all"])
    assert code == 0 and json.loads(out) == {"cancelled_orders": 3}
    code, out, _ = ctl(["--socket", str(daemon.path), "retrain"])
    assert code == 0 and "ens-0002" in out
    code, _, _ = ctl(["--socket", str(daemon.path), "reduce", "--reason", "vol"])
    assert code == 0 and daemon.target.state is TradingState.REDUCING


def test_error_reply_exit_1(daemon: ServerThread) -> None:
    ctl(["--socket", str(daemon.path), "halt"])
    code, out, err = ctl(["--socket", str(daemon.path), "reduce"])
    assert code == 1 and "invalid_transition" in err
    code, out, _ = ctl(["--socket", str(daemon.path), "--json", "reduce"])
    assert code == 1 and json.loads(out)["error"]["code"] == "invalid_transition"


def test_permission_denied_exit_1(tmp_path: Path) -> None:
    d = Path(tempfile.mkdtemp(prefix="abl-", dir="/tmp"))
    srv = ServerThread(d / "ctl.sock", authorize=lambda peer: False)
    try:
        code, _, err = ctl(["--socket", str(srv.path), "halt"])
        assert code == 1 and "permission_denied" in err
        assert ctl(["--socket", str(srv.path), "status"])[0] == 0
    finally:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_no_daemon_exit_2(tmp_path: Path) -> None:
    code, _, err = ctl(["--socket", str(tmp_path / "nope.sock"), "status"])
    assert code == 2 and "not_connected" in err
    code, out, _ = ctl(["--socket", str(tmp_path / "nope.sock"), "status", "--json"])
    assert code == 2 and json.loads(out)["error"]["code"] == "not_connected"


def test_socket_from_config(daemon: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[control]\nsocket = "{daemon.path}"\n')
    assert ctl(["--config", str(cfg), "status"])[0] == 0
    # state dir: <state_dir>/algobotd.sock
    cfg.write_text("")
    link_dir = Path(tempfile.mkdtemp(prefix="abs-", dir="/tmp"))
    try:
        (link_dir / "algobotd.sock").symlink_to(daemon.path)
        assert ctl(["--config", str(cfg), "--state-dir", str(link_dir), "status"])[0] == 0
    finally:
        shutil.rmtree(link_dir, ignore_errors=True)


def test_bad_config_exit_78(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[control]\nsocket = 5\n")
    code, _, err = ctl(["--config", str(cfg), "status"])
    assert code == EX_CONFIG and "control.socket" in err


def test_usage_error() -> None:
    assert ctl(["frobnicate"])[0] == 2
