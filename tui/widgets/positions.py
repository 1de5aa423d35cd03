"""Open positions: qty, avg cost, last, unrealized P&L, soft/hard stops."""

from __future__ import annotations

from algobotd.control.protocol import PositionRow
from tui import fmt
from tui.widgets.sync_table import Row, SyncTable


class PositionsTable(SyncTable):
    TITLE = "Positions"
    COLUMNS = (
        ("Symbol", "symbol"), ("Qty", "qty"), ("Avg cost", "avg"), ("Last", "last"),
        ("Unreal. P&L", "upnl"), ("Soft stop", "soft"), ("Hard stop", "hard"), ("Value", "mv"),
    )

    def show(self, positions: list[PositionRow]) -> None:
        rows: list[Row] = []
        for p in positions:
            rows.append((p.symbol, (
                p.symbol,
                fmt.right(f"{p.qty:,}", "" if p.qty > 0 else "magenta"),  # shorts stand out
                fmt.right(fmt.price(p.avg_cost)),
                fmt.right(fmt.price(p.last)),
                fmt.pnl_text(p.unrealized_pnl),
                fmt.right(fmt.price(p.soft_stop), "yellow"),
                fmt.right(fmt.price(p.hard_stop), "red"),
                fmt.right(fmt.money(p.market_value, compact=True)),
            )))
        self.sync(rows)
