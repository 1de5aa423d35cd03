"""The trading state, impossible to miss: one green line when ACTIVE, a three-line coloured
block when REDUCING or HALTED, and the same block when the daemon is not reachable."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from algobotd.control.protocol import Status
from tui import fmt

STATE_CLASSES = ("-active", "-reducing", "-halted", "-disconnected")


class TradingBanner(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("connecting…", id=id, classes="-disconnected")
        self.state = "UNKNOWN"
        self._text = ""

    def _show(self, cls: str, text: str) -> None:
        for c in STATE_CLASSES:
            self.set_class(c == cls, c)
        if text != self._text:
            self._text = text
            self.update(Text(text))

    def show_status(self, status: Status) -> None:
        self.state = status.trading_state
        reason = status.trading_state_reason
        by = f" · by {status.trading_state_by}" if status.trading_state_by else ""
        since = f" · since {fmt.hms(status.trading_state_since)}" if status.trading_state_since else ""
        if status.trading_state == "ACTIVE":
            self._show("-active", f"● ACTIVE{' — ' + reason if reason else ''}")
        elif status.trading_state == "REDUCING":
            self._show("-reducing", f"▲ REDUCING — only orders that shrink positions\n"
                                    f"{reason or 'no reason given'}{by}{since}\nr resume · h halt · f flatten")
        else:
            self._show("-halted", f"■ HALTED — no new orders\n{reason or 'no reason given'}{by}{since}\n"
                                  "r resume · f flatten")

    def show_disconnected(self, reason: str, retry_in: float, path: str) -> None:
        self.state = "DISCONNECTED"
        self._show("-disconnected", f"✖ DISCONNECTED from algobotd — data below may be stale\n{reason}\n"
                                    f"retrying in {retry_in:.1f}s · {path}")
