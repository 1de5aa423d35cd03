"""bench/sentiment.py still runs (tiny size; figures are printed, never checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_sentiment_quick() -> None:
    proc = subprocess.run([sys.executable, "bench/sentiment.py", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "headline+summary" in proc.stdout and "items/s" in proc.stdout
