"""Replay of stored bars (``feed.kind = "replay"``): DuckDB ``bars`` table, CSV or Parquet.

The file is loaded once with DuckDB (read-only for database files), validated with
vectorised numpy masks, and pivoted to ``[n_ts, n_symbols]`` matrices; each batch is
then a set of row views. Rows that would poison features (NaN, non-positive prices,
inconsistent OHLC, negative volume, duplicate ``(symbol, ts)``) are dropped at this
edge and counted by reason in ``ReplayFeed.dropped``.

Timestamps: TIMESTAMP/DATE columns without a zone are taken as UTC; TIMESTAMPTZ and ISO
strings with an offset are converted; numbers are epoch seconds, milliseconds,
microseconds or nanoseconds, chosen per file by magnitude. Symbols are trimmed and
upper-cased. ``SPY``/``VIX`` rows, when present, are also delivered in ``BarBatch.refs``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import duckdb
import numpy as np

from algobotd.config import FeedConfig
from algobotd.domain import BarBatch
from algobotd.feeds.base import ResumePoint
from algobotd.feeds.pacing import Pacer

REQUIRED_COLUMNS = ("symbol", "ts", "open", "high", "low", "close", "volume")
REF_SYMBOLS = ("SPY", "VIX")
_FIELDS = ("open", "high", "low", "close", "volume")
_QUOTE_FIELDS = ("bid", "ask")
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT", "UHUGEINT")


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _file_kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".duckdb", ".db", ".ddb"):
        return "duckdb"
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        return "parquet"
    if any(s in (".csv", ".tsv", ".txt") for s in suffixes):
        return "csv"
    with path.open("rb") as fh:  # unknown suffix: sniff the magic bytes
        head = fh.read(16)
    if head[:4] == b"PAR1":
        return "parquet"
    if head[8:12] == b"DUCK":
        return "duckdb"
    return "csv"


def _ts_expr(col: str, sql_type: str) -> tuple[str, bool]:
    """SQL turning the ts column into an integer; the flag says it still needs unit scaling."""
    t = sql_type.upper()
    if t.startswith("TIMESTAMP") or t == "DATE":
        return f"epoch_ns({col})", False
    if t in _INTEGER_TYPES:
        return f"CAST({col} AS BIGINT)", True
    if t in ("DOUBLE", "FLOAT", "REAL") or t.startswith("DECIMAL"):
        return f"CAST({col} AS DOUBLE)", True
    # Strings (e.g. ISO text DuckDB did not auto-detect): unparseable values become NULL -> dropped.
    return f"epoch_ns(TRY_CAST({col} AS TIMESTAMPTZ))", False


def _to_ns(raw: np.ndarray) -> np.ndarray:
    """Epoch numbers in an unknown unit -> int64 ns, choosing the unit from the magnitude."""
    if raw.size == 0:
        return raw.astype(np.int64)
    top = float(np.max(np.abs(raw)))
    scale = 1e9 if top < 1e11 else 1e6 if top < 1e14 else 1e3 if top < 1e17 else 1.0
    if raw.dtype.kind == "f":
        return np.rint(raw * scale).astype(np.int64)
    return raw.astype(np.int64) * int(scale)


def _load(path: str) -> tuple[list[str], dict[str, np.ndarray]]:
    """Read the file once; returns sorted symbol names and row arrays (sid, ts, OHLCV ...)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{path}: replay file not found")
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")  # naive strings cast to TIMESTAMPTZ mean UTC
        kind = _file_kind(p)
        if kind == "duckdb":
            con.execute(f"ATTACH {_sql_str(str(p))} AS replay_src (READ_ONLY)")
            found = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'replay_src' "
                                "AND lower(table_name) = 'bars'").fetchone()
            if not found or not found[0]:
                raise ValueError(f"{path}: DuckDB file has no bars table")
            src = "replay_src.bars"
        elif kind == "parquet":
            src = f"read_parquet({_sql_str(str(p))})"
        else:
            src = f"read_csv({_sql_str(str(p))})"
        columns = {row[0].lower(): (row[0], row[1]) for row in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise ValueError(f"{path}: missing required columns {', '.join(missing)} "
                             f"(need {', '.join(REQUIRED_COLUMNS)}; found {', '.join(n for n, _ in columns.values())})")
        q = {c: _sql_ident(columns[c][0]) for c in REQUIRED_COLUMNS}
        ts_sql, needs_unit = _ts_expr(q["ts"], columns["ts"][1])
        # bid/ask at the bar close are optional (our own bars table stores them): with them a
        # replay pays the same spread as the run that recorded the bars
        quotes = [c for c in _QUOTE_FIELDS if c in columns]
        q.update({c: _sql_ident(columns[c][0]) for c in quotes})
        prices = ", ".join(f"COALESCE(TRY_CAST({q[c]} AS DOUBLE), 'NaN'::DOUBLE) AS {c}" for c in (*_FIELDS, *quotes))
        symbol = f"upper(trim(CAST({q['symbol']} AS VARCHAR)))"
        # rn keeps file order so "first wins" on duplicates: a Parquet file numbers its rows, a
        # DuckDB table has rowids, a CSV file is parsed once into a temp table that has them
        if kind == "parquet" and "file_row_number" not in columns:
            src, rn = f"read_parquet({_sql_str(str(p))}, file_row_number = true)", "file_row_number"
        elif kind == "duckdb":
            rn = "rowid"
        else:
            con.execute(f"CREATE TEMP TABLE raw AS SELECT * FROM {src}")
            src, rn = "raw", "rowid"
        names = [r[0] for r in con.execute(f"SELECT DISTINCT {symbol} AS s FROM {src} WHERE s IS NOT NULL "
                                           "AND s <> '' ORDER BY s").fetchall()]
        # symbol ids by a hash join on the (few) names: a third of the cost of a dense_rank
        # window, which sorts every row. Output order is free; rn carries the file order.
        con.execute("CREATE TEMP TABLE names AS SELECT unnest(?::VARCHAR[]) AS name, "
                    "CAST(generate_subscripts(?::VARCHAR[], 1) - 1 AS BIGINT) AS sid", [names, names])
        rows = con.execute(
            f"SELECT src.{rn} AS rn, COALESCE(names.sid, -1) AS sid, ({ts_sql}) IS NULL AS ts_null, "
            f"COALESCE({ts_sql}, 0) AS ts, {prices} FROM {src} AS src LEFT JOIN names ON {symbol} = names.name"
        ).fetchnumpy()
    except duckdb.Error as exc:
        raise ValueError(f"{path}: cannot read bars: {exc}") from exc
    finally:
        con.close()
    data = _in_file_order({k: np.asarray(v) for k, v in rows.items()})
    data["ts"] = _to_ns(data["ts"]) if needs_unit else data["ts"].astype(np.int64, copy=False)
    return names, data


def _in_file_order(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The join's rows back in file order (``rn``: row number or rowid, usually 0..n-1), so
    that a time-major file needs no sort later and every gather from it reads memory in sequence."""
    rn = data["rn"]
    if rn.size < 2 or bool((rn[1:] > rn[:-1]).all()):
        return data
    where = np.full(rn.size, -1, dtype=np.int64)
    if int(rn.min()) == 0 and int(rn.max()) == rn.size - 1:
        where[rn] = np.arange(rn.size)  # a permutation of 0..n-1 is inverted without a sort
    if bool((where < 0).any()):  # gaps (deleted rowids) or repeats: sort instead
        where = np.argsort(rn, kind="stable")
    return {k: v[where] for k, v in data.items()}


def _time_major_order(idx: np.ndarray, ts: np.ndarray, col: np.ndarray, rn: np.ndarray) -> np.ndarray:
    """``idx`` ordered by (ts, column, file row): the first of duplicate rows comes first.

    Most files are written time-major already; checking that (one vectorised pass) is far
    cheaper than the three-key lexsort every other file still gets.
    """
    t, c, r = ts[idx], col[idx], rn[idx]
    ascending = (t[1:] > t[:-1]) | ((t[1:] == t[:-1]) & ((c[1:] > c[:-1]) | ((c[1:] == c[:-1]) & (r[1:] > r[:-1]))))
    if bool(ascending.all()):
        return idx
    return idx[np.lexsort((r, c, t))]


def _matrix_builder(shape: tuple[int, int], order: np.ndarray, t_idx: np.ndarray, col_s: np.ndarray,
                    n_rows: int) -> Callable[[np.ndarray], np.ndarray]:
    """Row values -> a ``[n_ts, n_columns]`` matrix, NaN where a symbol has no bar.

    ``order`` sorts the kept rows by (ts, column). When they fill every cell once (a dense
    file), the sorted rows are the matrix in row-major order: no NaN fill and no scatter, and
    when nothing was dropped or moved not even a copy (the matrix is a view of the rows).
    """
    if len(order) != shape[0] * shape[1]:
        def scatter(values: np.ndarray) -> np.ndarray:
            m = np.full(shape, np.nan)
            m[t_idx, col_s] = values[order]
            return m
        return scatter
    if len(order) == n_rows and bool((order[1:] > order[:-1]).all()):  # order is 0..n-1
        return lambda values: values.reshape(shape)
    return lambda values: values[order].reshape(shape)


class ReplayFeed:
    """Stored bars as ``BarBatch``es, one per distinct timestamp, paced by ``feed.replay.speed``."""

    def __init__(self, feed: FeedConfig, path: str | None = None) -> None:
        self.path = path or feed.replay.path
        if not self.path:
            raise ValueError("replay feed needs a file: set feed.replay.path")
        self.bar_seconds: int = feed.bar_seconds
        self._speed = feed.replay.speed
        self.dropped: dict[str, int] = {}
        names, rows = _load(self.path)
        self.symbols: tuple[str, ...] = tuple(feed.symbols) if feed.symbols else tuple(names)
        self._build(names, rows)
        self._live_start = 0
        self._closed = False
        self._pacer: Pacer | None = None

    def _drop(self, keep: np.ndarray, bad: np.ndarray, reason: str) -> None:
        hit = bad & keep
        count = int(hit.sum())
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + count
            keep &= ~hit

    def _build(self, names: list[str], rows: dict[str, np.ndarray]) -> None:
        n = len(self.symbols)
        # Columns: the universe, then reference series present in the data but not traded.
        column_of = {s: i for i, s in enumerate(self.symbols)}
        for ref in REF_SYMBOLS:
            if ref in names and ref not in column_of:
                column_of[ref] = len(column_of)
        remap = np.array([column_of.get(s, -1) for s in names] + [-1], dtype=np.int64)
        # copy=False: the columns are already of these types; a copy is another pass over fresh memory
        sid = rows["sid"].astype(np.int64, copy=False)
        col = remap[np.where(sid >= 0, sid, len(names))]
        keep = (col >= 0) | (sid < 0)  # other symbols are simply not subscribed: not "dropped"
        o, h, l, c, v = (rows[f].astype(np.float64, copy=False) for f in _FIELDS)
        self._drop(keep, sid < 0, "bad_symbol")
        self._drop(keep, rows["ts_null"].astype(bool, copy=False), "bad_ts")
        with np.errstate(invalid="ignore"):
            self._drop(keep, ~(np.isfinite(o) & np.isfinite(h) & np.isfinite(l) & np.isfinite(c) & np.isfinite(v)), "nan")
            self._drop(keep, (o <= 0) | (h <= 0) | (l <= 0) | (c <= 0), "non_positive_price")
            self._drop(keep, h < l, "high_below_low")
            self._drop(keep, (h < np.maximum(o, c)) | (l > np.minimum(o, c)), "ohlc_inconsistent")
            self._drop(keep, v < 0, "negative_volume")
        # Reference-only rows count only at timestamps where the universe traded.
        ts = rows["ts"]
        if len(column_of) > n:
            keep &= np.isin(ts, ts[keep & (col < n)]) | (col < n)
        order = _time_major_order(np.nonzero(keep)[0], ts, col, rows["rn"])
        ts_s, col_s = ts[order], col[order]
        dup = np.zeros(len(order), dtype=bool)
        dup[1:] = (ts_s[1:] == ts_s[:-1]) & (col_s[1:] == col_s[:-1])
        if dup.any():
            self.dropped["duplicate"] = self.dropped.get("duplicate", 0) + int(dup.sum())
            order, ts_s, col_s = order[~dup], ts_s[~dup], col_s[~dup]
        # ts_s is sorted: the distinct timestamps and each row's index without another sort
        new_ts = np.ones(len(ts_s), dtype=bool)
        new_ts[1:] = ts_s[1:] != ts_s[:-1]
        self.timestamps = ts_s[new_ts]
        t_idx = np.cumsum(new_ts) - 1
        shape = (len(self.timestamps), len(column_of))
        matrix = _matrix_builder(shape, order, t_idx, col_s, len(ts))
        self._m: dict[str, np.ndarray] = {name: matrix(arr) for name, arr in zip(_FIELDS, (o, h, l, c, v))}
        for name in _QUOTE_FIELDS:
            self._m[name] = matrix(rows[name].astype(np.float64, copy=False)) if name in rows else np.full(shape, np.nan)
        with np.errstate(invalid="ignore"):  # a crossed or non-positive quote is no quote
            bad = ~((self._m["bid"] > 0) & (self._m["ask"] >= self._m["bid"]))
        self._m["bid"][bad] = np.nan
        self._m["ask"][bad] = np.nan
        if len(order) == shape[0] * shape[1]:
            self._valid = np.ones(shape, dtype=bool)
        else:
            self._valid = np.zeros(shape, dtype=bool)
            self._valid[t_idx, col_s] = True
        self._ts_list: list[int] = self.timestamps.tolist()
        self._refs = [(r, column_of[r]) for r in REF_SYMBOLS if r in column_of]

    def __len__(self) -> int:
        return len(self._ts_list)

    def _batch(self, t: int) -> BarBatch:
        n = len(self.symbols)
        m = self._m
        refs: dict[str, float] = {}
        for name, j in self._refs:
            x = float(m["close"][t, j])
            if not math.isnan(x):
                refs[name] = x
        return BarBatch(
            ts=self._ts_list[t], symbols=self.symbols,
            open=m["open"][t, :n], high=m["high"][t, :n], low=m["low"][t, :n], close=m["close"][t, :n],
            volume=m["volume"][t, :n], valid=self._valid[t, :n],
            bid=m["bid"][t, :n], ask=m["ask"][t, :n], refs=refs)

    @property
    def connected(self) -> bool:
        return not self._closed

    async def history(self, n_bars: int, resume: ResumePoint | None = None) -> list[BarBatch]:
        """Without resume: the first ``n_bars`` batches (``batches()`` then continues after them).
        With resume: the ``n_bars`` batches up to and including ``resume.last_ts``."""
        n_bars = max(0, n_bars)
        if resume is None:
            stop = min(n_bars, len(self))
            self._live_start = stop
            start = 0
        else:
            stop = int(np.searchsorted(self.timestamps, resume.last_ts, side="right"))
            start = max(0, stop - n_bars)
        return [self._batch(t) for t in range(start, stop)]

    async def batches(self, resume: ResumePoint | None = None) -> AsyncIterator[BarBatch]:
        if resume is None:
            t = self._live_start
        else:
            t = int(np.searchsorted(self.timestamps, resume.last_ts, side="right"))
        self._pacer = pacer = Pacer(self.bar_seconds, self._speed)
        while t < len(self) and not self._closed:
            if not await pacer.wait():
                return
            yield self._batch(t)
            t += 1

    async def close(self) -> None:
        self._closed = True
        if self._pacer is not None:
            self._pacer.stop()
