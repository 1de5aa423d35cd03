"""bench/features.py still runs end to end (tiny sizes; figures are printed, never checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_bench_features_quick() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "features.py"), "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for label in ("incremental (all fresh)", "naive pandas, last 200", "speed-up vs naive", "KiB per symbol"):
        assert label in proc.stdout, proc.stdout
