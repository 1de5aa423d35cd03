"""Top line: mode, broker and feed connection, last bar and feed lag, model, link state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from algobotd.control.protocol import Status
from tui import fmt

MODE_STYLE = {"live": "bold white on red", "paper": "bold black on yellow", "sim": "bold black on cyan"}
WALL_CLOCK_MODES = ("paper", "live")  # modes whose bars follow the wall clock
LAG_WARN_S = 5.0  # feed lag beyond this (after the bar's own length) is shown in red


def append_altdata(t: Text, alt: dict | None) -> None:
    """Alternative-data freshness (algobotd/altdata/hub.py): ``news ● 3m`` per source, red when down."""
    if not alt:
        return
    for name, src in (alt.get("sources") or {}).items():
        ok = bool(src.get("ok"))
        t.append(f"  {name} ")
        t.append("●" if ok else "✖", style="green" if ok else "bold red")
        age = src.get("age_s")
        if age is not None:
            t.append(f" {fmt.duration(float(age))}", style="dim")


class StatusHeader(Static):
    def __init__(self, clock: Callable[[], datetime], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self._status: Status | None = None
        self._connected = False
        self._may_control = True
        self._last: Text | None = None

    def set_status(self, status: Status) -> None:
        self._status = status
        self.redraw()

    def set_link(self, connected: bool, may_control: bool = True) -> None:
        self._connected = connected
        self._may_control = may_control
        self.redraw()

    def lag_seconds(self) -> float | None:
        s = self._status
        if s is None:
            return None
        if s.feed_lag_s is not None:  # the engine's clock knows best (sim time != wall time)
            return s.feed_lag_s
        if s.mode not in WALL_CLOCK_MODES:
            return None  # simulated time: the wall clock says nothing about lag
        bar = fmt.parse_ts(s.last_bar_ts)
        if bar is None:
            return None
        return (self._clock() - bar).total_seconds() - (s.bar_seconds or 0)

    def redraw(self) -> None:
        """Rebuilt on every status and once a second (lag); only repainted when it changed."""
        t = Text(no_wrap=True, overflow="ellipsis")
        s = self._status
        if s is not None:
            t.append(f" {s.mode.upper()} ", style=MODE_STYLE.get(s.mode, "reverse"))
        else:
            t.append(" algobot ", style="bold")
        # the link state comes first: at 80 columns the tail (model id) is what gets cut
        if self._connected:
            t.append(" ● connected", style="green")
            if not self._may_control:
                t.append(" (read-only)", style="yellow")
        else:
            t.append(" ✖ disconnected", style="bold red")
        if s is not None:
            t.append("  broker ")
            t.append("●" if s.broker_connected else "✖", style="green" if s.broker_connected else "bold red")
            t.append(" feed ")
            t.append("●" if s.feed_connected else "✖", style="green" if s.feed_connected else "bold red")
            lag = self.lag_seconds()
            t.append(f"  bar {fmt.hms(s.last_bar_ts)}")
            if lag is not None:
                t.append(f" lag {fmt.duration(lag)}", style="bold red" if lag > LAG_WARN_S else "dim")
            t.append(f"  model {s.model_id or '-'}", style="dim")
            append_altdata(t, s.altdata)
        if t != self._last:
            self._last = t
            self.update(t)
