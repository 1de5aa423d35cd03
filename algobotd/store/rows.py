"""Buffered rows -> the columns, SELECT list and parameters of one INSERT (the writer thread's side).

Tuple rows become one numpy column per field; column blocks from the hot path (``add_columns``)
are concatenated per table, their per-block constants repeated or bound once as parameters, and
integer symbol codes decoded by DuckDB. Order status updates whose order row is written in the
same flush are folded into that row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from algobotd.store.schema import COLUMNS

TIMESTAMP_COLUMNS = frozenset({"ts", "started_at", "ended_at", "created_at", "updated_at", "next_attempt", "sent_at"})
_NAT = np.iinfo(np.int64).min
_ORDER_UPDATE_COLUMNS = ("client_order_id", "status", "filled_qty", "avg_fill_price", "broker_order_id", "status_reason", "updated_at")
_ORDERS_UPDATED = tuple(COLUMNS["orders"].index(c) for c in _ORDER_UPDATE_COLUMNS[1:])  # where an update lands


def _column(name: str, values: Sequence[Any]) -> np.ndarray:
    if name in TIMESTAMP_COLUMNS:
        return np.array([_NAT if v is None else v for v in values], dtype=np.int64).view("datetime64[ns]")
    # DuckDB reads an object column value by value holding the GIL (which the engine thread
    # then waits for); a column of plain floats or ints goes in as a typed array instead, to
    # the same stored values (a NaN is NULL either way)
    kinds = set(map(type, values))
    if kinds == {float}:
        return np.array(values, dtype=np.float64)
    if kinds == {int}:
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:  # beyond int64: DuckDB decides from the Python ints
            pass
    return np.array(values, dtype=object)


def _tuple_columns(names: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> dict[str, np.ndarray]:
    """Tuple rows -> one typed column per name. ``zip(*rows)`` transposes in C: this runs on the
    writer thread holding the GIL, which the engine thread then waits for."""
    if set(map(len, rows)) != {len(names)}:  # zip(*rows) would silently cut every row short
        raise ValueError(f"rows of {len(names)} fields expected ({', '.join(names)})")
    return {c: _column(c, values) for c, values in zip(names, zip(*rows))}


def _fold_order_updates(new_orders: list[tuple[Any, ...]], updates: dict[str, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    """The order updates (``_ORDER_UPDATE_COLUMNS``) whose order row is inserted in the same flush."""
    return {r[0]: updates[r[0]] for r in new_orders if r[0] in updates}


def _with_update(order: tuple[Any, ...], update: tuple[Any, ...]) -> tuple[Any, ...]:
    """An ``orders`` row with an update applied, as the flush's UPDATE statement would."""
    row = list(order)
    for position, value in zip(_ORDERS_UPDATED, update[1:]):
        row[position] = value
    if not update[4]:  # coalesce(nullif(broker_order_id, ''), orders.broker_order_id)
        row[_ORDERS_UPDATED[3]] = order[_ORDERS_UPDATED[3]]
    return tuple(row)


@dataclass(slots=True)
class _Block:
    """Rows given as aligned numpy columns plus per-block constants (see ``add_columns``)."""

    n: int
    columns: Mapping[str, np.ndarray]
    constants: Mapping[str, Any]


def _merge_blocks(table: str, blocks: list[_Block], symbol_names: Sequence[str]) -> tuple[str, list[Any], dict[str, Any]]:
    """One ``SELECT`` list, its parameters and one registered relation for all blocks of a table.

    Columns every block gives as arrays are concatenated; a constant shared by all blocks
    becomes one SQL parameter and one that varies becomes ``np.repeat`` over the blocks
    (a batch's timestamp); integer ``symbol`` columns are codes into ``symbol_names`` and
    are decoded by DuckDB (``list_extract``), so no Python string object is built per row.
    """
    exprs: list[str] = []
    params: list[Any] = []
    relation: dict[str, Any] = {}
    counts = np.fromiter((b.n for b in blocks), dtype=np.int64, count=len(blocks))
    # the hot path gives the same array columns for every block of a table: test each column
    # against the few distinct sets, not against every block (hundreds per flush)
    array_sets = {frozenset(b.columns) for b in blocks}
    for c in COLUMNS[table]:
        if all(c in s for s in array_sets):
            parts = [b.columns[c] for b in blocks]
            if c == "symbol" and {p.dtype.kind for p in parts} <= {"i", "u"}:
                relation[c] = parts[0] if len(parts) == 1 else np.concatenate(parts)
                exprs.append(f"list_extract(?::VARCHAR[], {c} + 1)")
                params.append(list(symbol_names))
                continue
            if c == "symbol":  # codes next to names (not from the engine): decode the codes here
                names = np.array(symbol_names, dtype=object)
                parts = [names[p] if p.dtype.kind in "iu" else p for p in parts]
            relation[c] = parts[0] if len(parts) == 1 else np.concatenate(parts)
        elif not any(c in s for s in array_sets):  # a constant in every block (add_columns checked)
            values = [b.constants[c] for b in blocks]
            # timestamps always go through numpy (datetime64[ns]), exactly like array columns
            value = values[0]
            if c not in TIMESTAMP_COLUMNS and _all_same(values):
                if _is_nan(value):
                    exprs.append("NULL::DOUBLE")  # as DuckDB reads a NaN from a numpy column
                else:
                    exprs.append(f"?::{_sql_type(value)}")
                    params.append(value)
                continue
            relation[c] = np.repeat(_constant_column(c, values), counts)
        else:  # some blocks give an array, some a constant
            relation[c] = np.concatenate([b.columns[c] if c in b.columns else
                                          np.repeat(_constant_column(c, [b.constants[c]]), b.n) for b in blocks])
        exprs.append(c)
    return ", ".join(exprs), params, relation


def _all_same(values: list[Any]) -> bool:
    """Every value equal to the first, a NaN equal to a NaN (``count`` checks identity first, in C)."""
    value = values[0]
    if values.count(value) == len(values):
        return True
    return all(v == value or (_is_nan(v) and _is_nan(value)) for v in values)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _constant_column(name: str, values: list[Any]) -> np.ndarray:
    if name in TIMESTAMP_COLUMNS or any(isinstance(v, str) or v is None for v in values):
        return _column(name, values)
    return np.array(values)


def _sql_type(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "BOOLEAN"
    if isinstance(value, (int, np.integer)):
        return "BIGINT"
    if isinstance(value, (float, np.floating)):
        return "DOUBLE"
    return "VARCHAR"
