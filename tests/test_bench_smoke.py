"""bench/engine.py still runs end to end (tiny sizes; figures are printed, never checked)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "engine.py"

try:
    import backtrader  # noqa: F401
    HAVE_BACKTRADER = True
except ImportError:
    HAVE_BACKTRADER = False


@pytest.mark.parametrize("case", [
    "sma",  # our engine: must not need backtrader
    pytest.param("backtrader", marks=pytest.mark.skipif(not HAVE_BACKTRADER,
                                                        reason="backtrader not importable (bench extra)")),
])
def test_bench_quick(case: str) -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--case", case], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "symbol-bars/s" in proc.stdout, proc.stdout
    # the case's row: name, load+run seconds, then a symbol-bars/s figure
    assert re.search(rf"^{case}\s+\d+\.\d+\s+[\d,]+\s", proc.stdout, re.MULTILINE), proc.stdout
