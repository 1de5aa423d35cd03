"""The shipped unit passes ``systemd-analyze verify`` (where the tool exists) and keeps its promises."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

UNIT = ROOT / "systemd" / "algobotd.service"
GPU = ROOT / "systemd" / "gpu.conf"
INSTALLED_EXE = "/opt/algobot/.venv/bin/algobotd"


def directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line.strip())
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


def test_unit_declares_notify_watchdog_restart_and_hardening() -> None:
    d = directives(UNIT.read_text())
    expected = {"Type": "notify", "NotifyAccess": "main", "WatchdogSec": "30", "Restart": "on-failure",
                "User": "algobot", "Group": "algobot", "StateDirectory": "algobot", "RuntimeDirectory": "algobot",
                "ConfigurationDirectory": "algobot", "UMask": "0027", "NoNewPrivileges": "yes",
                "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
                "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes"}
    for key, value in expected.items():
        assert d.get(key) == [value], key
    assert "StartLimitBurst" in d and "StartLimitIntervalSec" in d
    assert int(d["TimeoutStopSec"][0]) >= 60  # a clean stop finishes the batch and flushes the store
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    # the daemon parses its own ExecStart arguments
    exec_args = d["ExecStart"][0].split()
    assert exec_args[0] == INSTALLED_EXE and exec_args[1] == "run"
    from algobotd.__main__ import parser

    args = parser().parse_args(exec_args[1:])
    assert args.config == "/etc/algobot/config.toml" and args.state_dir == "/var/lib/algobot"
    gpu = directives(GPU.read_text())
    assert gpu["PrivateDevices"] == ["no"] and gpu["DevicePolicy"] == ["closed"]
    assert "/dev/nvidiactl rw" in gpu["DeviceAllow"] and "/dev/nvidia-uvm rw" in gpu["DeviceAllow"]


def analyze(tmp_path: Path, text: str, name: str) -> subprocess.CompletedProcess[str]:
    # verify insists that ExecStart exists: point it at this checkout's interpreter instead
    unit = tmp_path / name
    unit.write_text(text.replace(INSTALLED_EXE, f"{sys.executable} -m algobotd"))
    return subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("variant", ["plain", "gpu"])
def test_systemd_analyze_verify(tmp_path: Path, variant: str) -> None:
    text = UNIT.read_text() + (GPU.read_text() if variant == "gpu" else "")
    name = "algobotd.service"
    result = analyze(tmp_path, text, name)
    # verify exits 0 on directives it merely ignores, so its complaints about our file count too
    ours = [line for line in (result.stdout + result.stderr).splitlines() if name in line]
    assert result.returncode == 0 and ours == [], result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_the_check_itself_catches_a_broken_unit(tmp_path: Path) -> None:
    broken = UNIT.read_text().replace("WatchdogSec=30", "WatchdogSec=thirty")
    result = analyze(tmp_path, broken, "algobotd.service")
    assert "WatchdogSec" in result.stderr or "sec value" in result.stderr
