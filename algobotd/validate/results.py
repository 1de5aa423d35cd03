"""Result files of validation runs (mc, walkforward, tune): DuckDB tables + the CLI table.

A result file is never the live store, and an existing file is only replaced when it is a
result file of the same kind (a typo in --out must not destroy something else).
"""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from algobotd.config import Config, dump
from algobotd.store.paths import prepare_result_file  # noqa: F401  (re-exported for mc/walkforward/tune)

RUNS_DDL = ("CREATE TABLE IF NOT EXISTS runs (run_id VARCHAR, kind VARCHAR, started_at TIMESTAMP, "
            "ended_at TIMESTAMP, config VARCHAR, summary VARCHAR)")


def clean(x: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_tables(out: Path, kind: str, cfg: Config, summary: dict[str, Any], started_ns: int, ended_ns: int,
                 tables: dict[str, dict[str, np.ndarray]]) -> str:
    """One ``runs`` row plus column blocks, in one transaction."""
    run_id = uuid.uuid4().hex[:12]
    with duckdb.connect(str(out)) as con:
        con.execute(RUNS_DDL)
        con.execute("BEGIN TRANSACTION")
        con.execute("INSERT INTO runs VALUES (?, ?, make_timestamp(?::BIGINT // 1000), make_timestamp(?::BIGINT // 1000), ?, ?)",
                    [run_id, kind, started_ns, ended_ns, json.dumps(clean(dump(cfg))), json.dumps(clean(summary))])
        for name, cols in tables.items():
            con.register("block", {k: np.asarray(v) for k, v in cols.items()})
            con.execute(f"CREATE TABLE IF NOT EXISTS {name} AS SELECT * FROM block LIMIT 0")
            con.execute(f"INSERT INTO {name} SELECT * FROM block")
            con.unregister("block")
        con.execute("COMMIT")
    return run_id


def table(rows: list[list[str]], header: list[str]) -> str:
    """Compact fixed-width table: first column left-aligned, the rest right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *map(fmt, rows)])


def pct(x: float | None, digits: int = 1, sign: bool = True) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x * 100:+.{digits}f}%" if sign else f"{x * 100:.{digits}f}%"


def num(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"
