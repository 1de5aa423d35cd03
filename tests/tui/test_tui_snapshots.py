"""Snapshots of the main screen at 80x24 and 160x48, ACTIVE and HALTED, on deterministic data.

Each snapshot is kept twice under ``snapshots/``: ``.txt`` (what a person reads; the diff to
look at when it fails) and ``.svg`` (colours included: a HALTED banner that lost its red
fails too; open it in a browser). Regenerate after an intended UI change with
``UPDATE_SNAPSHOTS=1 pytest tests/tui/test_tui_snapshots.py`` and review the diff.

(pytest-textual-snapshot would do the same, but it pins syrupy 4.8, which needs pytest < 9.)
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
from ctl_fake_target import FakeTarget
from tui_pilot import make_app, wait_loaded
from tui_screen_text import screen_text

from algobotd.control.server import ControlServer

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
UPDATE = os.environ.get("UPDATE_SNAPSHOTS") == "1"


def _compare(name: str, actual: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE or not path.exists():
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(actual)
        if not UPDATE:
            pytest.fail(f"snapshot {name} did not exist; written, review and commit it")
        return
    expected = path.read_text()
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), "expected", "actual"))
        pytest.fail(f"snapshot {name} differs (UPDATE_SNAPSHOTS=1 to accept):\n{diff[:6000]}")


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
@pytest.mark.parametrize("state", ["ACTIVE", "HALTED"])
async def test_main_screen(server: ControlServer, target: FakeTarget, size: tuple[int, int], state: str) -> None:
    if state == "HALTED":
        await target.halt("daily loss breaker tripped", "breaker:daily_loss")
    app = make_app(server.path)
    async with app.run_test(size=size) as pilot:
        await wait_loaded(pilot, app)
        await pilot.pause(0.2)
        text = screen_text(app)
        assert state in text
        name = f"main_{state.lower()}_{size[0]}x{size[1]}"
        _compare(f"{name}.txt", text + "\n")
        _compare(f"{name}.svg", app.export_screenshot(title="algobot-tui"))
