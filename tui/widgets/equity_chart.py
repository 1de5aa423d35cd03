"""The equity curve as a sparkline, with its range, from the ``equity`` topic."""

from __future__ import annotations

from statistics import fmean

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline

from algobotd.control.protocol import EquityPoint
from tui import fmt


class EquityChart(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Equity"
        self._last_key: tuple[int, str, float] | None = None

    def compose(self) -> ComposeResult:
        yield Label("waiting for data…", id="equity-range")
        # mean per bucket: with more points than columns each column is a time slice
        yield Sparkline([], summary_function=fmean, id="equity-spark")

    def set_curve(self, points: list[EquityPoint]) -> None:
        if not points:
            return
        key = (len(points), points[-1].ts, points[-1].equity)
        if key == self._last_key:
            return
        self._last_key = key
        values = [pt.equity for pt in points]
        lo, hi = min(values), max(values)
        first, last = values[0], values[-1]
        change = last / first - 1.0 if first else 0.0
        self.query_one("#equity-range", Label).update(
            f"{fmt.money(last)}  [{fmt.sign_style(change) or 'dim'}]{fmt.pct(change, signed=True)}[/]"
            f"  [dim]low {fmt.money(lo, compact=True)} · high {fmt.money(hi, compact=True)} · "
            f"{fmt.hms(points[0].ts)}–{fmt.hms(points[-1].ts)} · {len(points)} pts[/]"
        )
        self.query_one("#equity-spark", Sparkline).data = values
