from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# helper modules next to this file (import-mode=importlib does not add test dirs to sys.path)
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from ops_sinks import HttpSink  # noqa: E402


@pytest.fixture
def http_sink() -> Iterator[HttpSink]:
    sink = HttpSink().start()
    yield sink
    sink.stop()
