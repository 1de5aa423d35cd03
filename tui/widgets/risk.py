"""Circuit breakers: each one's value against its threshold."""

from __future__ import annotations

from rich.text import Text

from algobotd.control.protocol import Risk
from tui.widgets.sync_table import Row, SyncTable


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.4f}" if abs(v) < 1 else f"{v:,.1f}"


class RiskTable(SyncTable):
    TITLE = "Risk"
    COLUMNS = (("Breaker", "name"), ("Value", "value"), ("Threshold", "thr"), ("Use", "use"), ("State", "state"))

    def show(self, risk: Risk) -> None:
        rows: list[Row] = []
        for b in risk.breakers:
            use = ""
            style = "green"
            if b.value is not None and b.threshold:
                ratio = max(0.0, b.value / b.threshold)  # negative: far from tripping
                use = f"{ratio:.0%}"
                style = "bold red" if b.tripped or ratio >= 0.8 else "yellow" if ratio >= 0.5 else "green"
            rows.append((b.name, (
                b.name, Text(_num(b.value), justify="right"), Text(_num(b.threshold), justify="right"),
                Text(use, style=style, justify="right"),
                Text("TRIPPED", style="bold white on red") if b.tripped else Text("ok", style="green"),
            )))
        self.sync(rows)
        subtitle = f"{risk.trading_state}"
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle
