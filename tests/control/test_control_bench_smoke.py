"""bench/control.py still runs end to end (--quick; figures are printed, never checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_control_bench_quick() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "control.py"), "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "10 subscribers" in proc.stdout and "p99" in proc.stdout, proc.stdout
