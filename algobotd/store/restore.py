"""Crash-only start-up: read back what the engine needs from the store.

The same function runs on a first start (empty file: everything empty) and after a crash,
so there is one start-up path. Portfolio state is rebuilt by replaying the ``trades`` table
(every fill exactly once) rather than trusting a snapshot, plus the ``cash_events`` of a
broker account (its opening cash, deposits and withdrawals: algobotd/brokers/account.py).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import duckdb
import numpy as np

from algobotd.domain import (
    BarBatch,
    Fill,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    TradingState,
    TradingStateChange,
)
from algobotd.feeds.base import ResumePoint

OPEN_STATUSES = (OrderStatus.NEW.value, OrderStatus.ACCEPTED.value, OrderStatus.PARTIALLY_FILLED.value)
OPENING = "opening"  # cash_events kind that sets the cash base (books adopted from a venue account)


@dataclass(frozen=True, slots=True)
class CashEvent:
    """Cash that moved without a fill (``cash_events``; see schema migration 4)."""

    ts: int
    account: str
    kind: str
    amount: float


@dataclass
class RestoredState:
    fills: list[Fill] = field(default_factory=list)
    open_orders: list[tuple[OrderRequest, int, OrderStatus]] = field(default_factory=list)
    trading_state: TradingStateChange | None = None
    order_seq: int = 0
    resume: ResumePoint | None = None
    high_water_mark: float | None = None
    day_start: tuple[int, float] | None = None  # (ts of the day's first equity row, its equity)
    equity_curve: list[tuple[int, float, float, float]] = field(default_factory=list)
    cash_events: list[CashEvent] = field(default_factory=list)  # since (and with) the last opening

    @property
    def is_fresh(self) -> bool:
        return self.resume is None and not self.fills and self.order_seq == 0

    def cash_base(self, default: float) -> float:
        """Cash before the fills: the last opening (else ``default``, broker.paper.initial_cash)
        plus every deposit, withdrawal or adjustment since."""
        base = default
        for ev in self.cash_events:
            base = ev.amount if ev.kind == OPENING else base + ev.amount
        return base


def _ns(col: str) -> str:
    return f"epoch_ns({col})"


def restore(con: duckdb.DuckDBPyConnection, equity_rows: int = 2000) -> RestoredState:
    st = RestoredState()
    st.fills = [
        Fill(e, c, s, Side(side), int(q), float(p), float(cm), int(ts))
        for e, c, s, side, q, p, cm, ts in con.execute(
            f"SELECT exec_id, client_order_id, symbol, side, qty, price, commission, {_ns('ts')} "
            "FROM trades ORDER BY ts, exec_id"
        ).fetchall()
    ]
    placeholders = ", ".join("?" * len(OPEN_STATUSES))
    for cid, sym, side, qty, typ, lp, tif, reason, status, filled, ts in con.execute(
        f"SELECT client_order_id, symbol, side, qty, type, limit_price, tif, reason, status, filled_qty, {_ns('ts')} "
        f"FROM orders WHERE status IN ({placeholders}) ORDER BY seq",
        list(OPEN_STATUSES),
    ).fetchall():
        req = OrderRequest(cid, sym, Side(side), int(qty), OrderType(typ), lp, TimeInForce(tif), reason or "", int(ts))
        st.open_orders.append((req, int(filled or 0), OrderStatus(status)))
    row = con.execute(
        f"SELECT state, reason, actor, {_ns('ts')} FROM trading_state ORDER BY ts DESC, rowid DESC LIMIT 1"
    ).fetchone()
    if row:
        st.trading_state = TradingStateChange(TradingState(row[0]), row[1], row[2], int(row[3]))
    st.order_seq = int(con.execute("SELECT coalesce(max(seq), 0) FROM orders").fetchone()[0])
    last = con.execute(f"SELECT max({_ns('ts')}) FROM bars").fetchone()[0]
    if last is not None:
        rows = con.execute(
            "SELECT symbol, arg_max(close, ts) FROM bars GROUP BY symbol ORDER BY symbol"
        ).fetchall()
        st.resume = ResumePoint(int(last), tuple(r[0] for r in rows), np.array([r[1] for r in rows], dtype=float))
    st.cash_events = _cash_events(con)
    if st.cash_events:
        _restore_marks_with_cash_events(con, st, equity_rows)
        return st
    hwm = con.execute("SELECT max(equity) FROM equity").fetchone()[0]
    st.high_water_mark = None if hwm is None else float(hwm)
    # the day's loss counts from the previous close (the last row before today), as the engine does
    day = con.execute(
        f"""WITH today AS (SELECT date_trunc('day', max(ts)) AS d FROM equity)
            SELECT (SELECT {_ns('min(ts)')} FROM equity, today WHERE ts >= today.d),
                   coalesce((SELECT arg_max(equity, ts) FROM equity, today WHERE ts < today.d),
                            (SELECT arg_min(equity, ts) FROM equity, today WHERE ts >= today.d))"""
    ).fetchone()
    st.day_start = None if day is None or day[0] is None else (int(day[0]), float(day[1]))
    st.equity_curve = _equity_curve(con, equity_rows)
    return st


def has_books(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the store holds books a venue account could disagree with (trades, orders, cash events)."""
    return bool(con.execute(
        "SELECT EXISTS (SELECT 1 FROM trades) OR EXISTS (SELECT 1 FROM orders) OR EXISTS (SELECT 1 FROM cash_events)"
    ).fetchone()[0])


def has_cash_events(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the books have a cash base from a venue account (an opening, see brokers/account.py)."""
    return bool(con.execute("SELECT EXISTS (SELECT 1 FROM cash_events)").fetchone()[0])


def _equity_curve(con: duckdb.DuckDBPyConnection, rows: int) -> list[tuple[int, float, float, float]]:
    return [
        (int(t), float(e), float(c), float(d))
        for t, e, c, d in reversed(
            con.execute(f"SELECT {_ns('ts')}, equity, cash, drawdown FROM equity ORDER BY ts DESC LIMIT ?",
                        [rows]).fetchall()
        )
    ]


def _cash_events(con: duckdb.DuckDBPyConnection) -> list[CashEvent]:
    """The cash events that still count: the last opening and everything after it."""
    rows = [CashEvent(int(t), a or "", k, float(x)) for t, a, k, x in con.execute(
        f"SELECT {_ns('ts')}, account, kind, amount FROM cash_events ORDER BY ts, rowid").fetchall()]
    opening = max((i for i, ev in enumerate(rows) if ev.kind == OPENING), default=0)
    return rows[opening:]


def _restore_marks_with_cash_events(con: duckdb.DuckDBPyConnection, st: RestoredState, equity_rows: int) -> None:
    """High-water mark and the day's start when cash moved without P&L.

    A deposit is no gain and a withdrawal no loss: each stored equity row counts as if every
    later cash event had already happened (row + the flows after it). An opening starts the
    books afresh: equity rows from before it do not count at all.
    """
    events = st.cash_events
    since = events[0].ts if events[0].kind == OPENING else None
    flows = [ev for ev in events if ev.kind != OPENING]
    floor = "" if since is None else f" AND ts >= make_timestamp({since // 1000})"

    def after(ts: int) -> float:
        return sum(ev.amount for ev in flows if ev.ts > ts)

    # equity rows between two flows all get the same shift: one max() per segment
    bounds = [None, *[ev.ts for ev in flows], None]
    best: float | None = None
    for lo, hi in itertools.pairwise(bounds):
        cond = "TRUE" + floor
        if lo is not None:
            cond += f" AND ts > make_timestamp({lo // 1000})"
        if hi is not None:
            cond += f" AND ts <= make_timestamp({hi // 1000})"
        row = con.execute(f"SELECT max(equity), {_ns('max(ts)')} FROM equity WHERE {cond}").fetchone()
        if row and row[0] is not None:
            value = float(row[0]) + after(int(row[1]))
            best = value if best is None else max(best, value)
    st.high_water_mark = best
    # the day's loss counts from the previous close (the last row before today), as the engine does
    day = con.execute(
        f"""WITH today AS (SELECT date_trunc('day', max(ts)) AS d FROM equity WHERE TRUE{floor})
            SELECT (SELECT {_ns('min(ts)')} FROM equity, today WHERE ts >= today.d),
                   coalesce((SELECT arg_max(equity, ts) FROM equity, today WHERE ts < today.d{floor}),
                            (SELECT arg_min(equity, ts) FROM equity, today WHERE ts >= today.d)),
                   coalesce((SELECT {_ns('max(ts)')} FROM equity, today WHERE ts < today.d{floor}),
                            (SELECT {_ns('min(ts)')} FROM equity, today WHERE ts >= today.d))"""
    ).fetchone()
    if day is not None and day[0] is not None:
        st.day_start = (int(day[0]), float(day[1]) + after(int(day[2])))
    st.equity_curve = _equity_curve(con, equity_rows)


def recent_batches(con: duckdb.DuckDBPyConnection, symbols: tuple[str, ...], n_bars: int) -> list[BarBatch]:
    """The last ``n_bars`` stored intervals as batches over ``symbols`` (warm-up after a restart)."""
    if n_bars <= 0:
        return []
    cols = con.execute(
        f"""SELECT symbol, {_ns('ts')} AS t, open, high, low, close, volume, bid, ask FROM bars
            WHERE ts IN (SELECT DISTINCT ts FROM bars ORDER BY ts DESC LIMIT ?) ORDER BY t, symbol""",
        [n_bars],
    ).fetchnumpy()
    return pivot_bars(symbols, cols)


def pivot_bars(symbols: tuple[str, ...], cols: dict[str, np.ndarray]) -> list[BarBatch]:
    """Long rows (symbol, t, open, high, low, close, volume[, bid, ask]) -> one BarBatch per distinct t.

    Symbols without a row at some t are marked stale (valid=False, NaN prices).
    """
    if len(cols["t"]) == 0:
        return []
    index = {s: i for i, s in enumerate(symbols)}
    sym_idx = np.array([index.get(s, -1) for s in cols["symbol"]])
    keep = sym_idx >= 0
    t = np.asarray(cols["t"], dtype=np.int64)[keep]
    sym_idx = sym_idx[keep]
    times, row = np.unique(t, return_inverse=True)
    shape = (len(times), len(symbols))
    mats = {}
    for name in ("open", "high", "low", "close", "volume", "bid", "ask"):
        m = np.full(shape, np.nan)
        if name in cols:
            # fetchnumpy gives masked arrays where the column has NULLs (no quote stored)
            m[row, sym_idx] = np.ma.filled(np.ma.asarray(cols[name], dtype=float), np.nan)[keep]
        mats[name] = m
    valid = np.zeros(shape, dtype=bool)
    valid[row, sym_idx] = True
    return [
        BarBatch(int(times[k]), symbols, mats["open"][k], mats["high"][k], mats["low"][k],
                 mats["close"][k], mats["volume"][k], valid[k], mats["bid"][k], mats["ask"][k])
        for k in range(len(times))
    ]
