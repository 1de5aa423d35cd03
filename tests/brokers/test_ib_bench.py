"""bench/brokers_ib.py still runs end to end (tiny sizes; figures are printed, never checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.timeout(120)
def test_bench_brokers_ib_quick() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "brokers_ib.py"), "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "p50" in proc.stdout and "bars/s" in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
