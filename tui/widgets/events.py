"""Tail of the daemon's log / risk events; only new events are appended (no redraw)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from algobotd.control.protocol import Event
from tui import fmt

KIND_STYLE = {"breaker": "bold red", "state": "bold yellow", "denial": "yellow", "fill": "green",
              "reconnect": "cyan", "error": "bold red"}


class EventLog(RichLog):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=500, wrap=False, markup=False, auto_scroll=True)
        self.border_title = "Events"
        self._seen: list[tuple[str, str, str]] = []  # the last events written, oldest first

    def show(self, events: list[Event]) -> None:
        keys = [(e.ts, e.kind, e.message) for e in events]
        start = 0
        if self._seen:
            # find where what we already showed ends in the new (sliding) window
            last = self._seen[-1]
            for i in range(len(keys) - 1, -1, -1):
                if keys[i] == last:
                    start = i + 1
                    break
        for e in events[start:]:
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(fmt.hms(e.ts), style="dim")
            line.append(f" {e.kind:<9}", style=KIND_STYLE.get(e.kind, "cyan"))
            line.append(e.message)
            self.write(line)
        if start < len(keys):
            self._seen = keys[-50:]
