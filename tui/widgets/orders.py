"""Open orders."""

from __future__ import annotations

from algobotd.control.protocol import OrderRow
from tui import fmt
from tui.widgets.sync_table import Row, SyncTable


class OrdersTable(SyncTable):
    TITLE = "Open orders"
    COLUMNS = (
        ("Symbol", "symbol"), ("Side", "side"), ("Qty", "qty"), ("Filled", "filled"),
        ("Type", "type"), ("Limit", "limit"), ("Status", "status"), ("Time", "ts"), ("Client id", "coid"),
    )

    def show(self, orders: list[OrderRow]) -> None:
        rows: list[Row] = []
        for o in orders:
            rows.append((o.client_order_id, (
                o.symbol, fmt.right(o.side, "green" if o.side == "buy" else "red"), fmt.right(f"{o.qty:,}"),
                fmt.right(f"{o.filled_qty:,}"), o.type, fmt.right(fmt.price(o.limit_price)), o.status,
                fmt.hms(o.ts), o.client_order_id,
            )))
        self.sync(rows)
