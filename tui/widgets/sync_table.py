"""A DataTable that is synchronised in place from snapshots: only changed cells are rewritten,
rows are added/removed individually, the cursor stays where the user left it."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

Cell = str | Text
Row = tuple[str, Sequence[Cell]]  # (row key, cells in column order)


class SyncTable(DataTable[Cell]):
    COLUMNS: Sequence[tuple[str, str, int | None]] = ()  # (label, key, width)
    TITLE = ""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.border_title = self.TITLE
        self._rows: dict[str, tuple[Cell, ...]] = {}
        self._order: list[str] = []

    def on_mount(self) -> None:
        for label, key, width in self.COLUMNS:
            self.add_column(label, key=key, width=width)

    def sync(self, rows: Sequence[Row]) -> None:
        order = [key for key, _ in rows]
        if order != self._order and set(order) != set(self._order):
            self._restructure(rows)
            return
        if order != self._order:  # same rows, new order: rebuild once (rare)
            self._restructure(rows)
            return
        columns = [key for _, key, _ in self.COLUMNS]
        for key, cells in rows:
            old = self._rows[key]
            new = tuple(cells)
            if new == old:
                continue
            for col, before, after in zip(columns, old, new, strict=True):
                if before != after:
                    self.update_cell(key, col, after)
            self._rows[key] = new
        self.border_subtitle = f"{len(rows)}"

    def _restructure(self, rows: Sequence[Row]) -> None:
        wanted = {key for key, _ in rows}
        for key in list(self._rows):
            if key not in wanted:
                self.remove_row(key)
                del self._rows[key]
        if [k for k in self._order if k in wanted] != [k for k, _ in rows if k in self._rows]:
            # relative order of surviving rows changed: start over
            self.clear()
            self._rows.clear()
        for key, cells in rows:
            new = tuple(cells)
            if key not in self._rows:
                self.add_row(*new, key=key)
            elif self._rows[key] != new:
                for (_, col, _), after in zip(self.COLUMNS, new, strict=True):
                    self.update_cell(key, col, after)
            self._rows[key] = new
        if [k for k in self._rows] != [k for k, _ in rows]:
            self.clear()
            self._rows.clear()
            for key, cells in rows:
                self.add_row(*cells, key=key)
                self._rows[key] = tuple(cells)
        self._order = [key for key, _ in rows]
        self.border_subtitle = f"{len(rows)}"
