"""Key figures: equity, day P&L (amount and %), drawdown against its limit, exposure, cash."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from algobotd.control.protocol import Status
from tui import fmt


class MetricsBar(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._key: tuple[object, ...] | None = None

    def show_status(self, s: Status) -> None:
        key = (s.equity, s.day_pnl, s.day_pnl_pct, s.drawdown, s.drawdown_limit, s.gross_exposure, s.cash)
        if key == self._key:
            return  # heartbeats repeat the same figures: no repaint
        self._key = key
        grid = Table.grid(expand=True, padding=(0, 1))
        for ratio in (3, 4, 3, 3, 2):  # day P&L carries amount and %, cash is short
            grid.add_column(ratio=ratio, no_wrap=True, overflow="ellipsis")
        grid.add_row(*(Text(label, style="dim") for label in ("Equity", "Day P&L", "Drawdown/limit", "Gross exp.", "Cash")))
        pnl_pct = f" ({fmt.pct(s.day_pnl_pct, signed=True)})" if s.day_pnl_pct is not None else ""
        dd_style = "green"
        if s.drawdown_limit:
            used = s.drawdown / s.drawdown_limit
            dd_style = "bold red" if used >= 0.8 else "yellow" if used >= 0.5 else "green"
        dd = fmt.pct(s.drawdown) + (f" / {fmt.pct(s.drawdown_limit, digits=1)}" if s.drawdown_limit else "")
        gross = "-"
        if s.gross_exposure is not None:
            gross = fmt.money(s.gross_exposure, compact=True)
            if s.equity:
                gross += f" ({s.gross_exposure / s.equity:.0%})"
        grid.add_row(
            Text(fmt.money(s.equity), style="bold"),
            Text(fmt.money(s.day_pnl, signed=True, compact=True) + pnl_pct, style=fmt.sign_style(s.day_pnl)),
            Text(dd, style=dd_style),
            Text(gross),
            Text(fmt.money(s.cash, compact=True)),
        )
        self.update(grid)
