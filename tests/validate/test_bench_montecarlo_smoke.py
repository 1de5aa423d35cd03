"""bench/montecarlo.py still runs end to end (tiny sizes; figures are printed, never checked)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_bench_montecarlo_quick() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "montecarlo.py"), "--quick", "--workers", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "paths/s" in proc.stdout and "1 worker(s)" in proc.stdout
