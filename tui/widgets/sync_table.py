"""A DataTable synchronised in place from snapshots: only changed cells are rewritten, rows are
added/removed individually, and the cursor stays where the user left it."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

Cell = str | Text
Row = tuple[str, Sequence[Cell]]  # (row key, cells in column order)


class SyncTable(DataTable[Cell]):
    COLUMNS: Sequence[tuple[str, str]] = ()  # (label, column key); widths follow the content
    TITLE = ""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.border_title = self.TITLE
        self._rows: dict[str, tuple[Cell, ...]] = {}
        self._order: list[str] = []

    def on_mount(self) -> None:
        for label, key in self.COLUMNS:
            self.add_column(label, key=key)

    def sync(self, rows: Sequence[Row]) -> None:
        order = [key for key, _ in rows]
        survivors = [key for key in self._order if key in set(order)]
        if order[: len(survivors)] != survivors:
            # rows were reordered: rebuild once (rare: a snapshot's order is stable)
            self.clear()
            self._rows.clear()
            survivors = []
        for key in self._order:
            if key in self._rows and key not in survivors:
                self.remove_row(key)
                del self._rows[key]
        columns = [key for _, key in self.COLUMNS]
        for key, cells in rows:
            new = tuple(cells)
            old = self._rows.get(key)
            if old is None:
                self.add_row(*new, key=key)
            elif new != old:
                for col, before, after in zip(columns, old, new, strict=True):
                    if before != after:
                        self.update_cell(key, col, after)
            self._rows[key] = new
        self._order = order
        subtitle = str(len(order))
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle
