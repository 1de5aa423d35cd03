"""DuckDB store: migrations from empty, the batching writer, restore after restart."""

from __future__ import annotations

import asyncio

import duckdb
import numpy as np
import pytest

from algobotd.domain import OrderStatus, TradingState
from algobotd.store.restore import restore
from algobotd.store.schema import COLUMNS, MIGRATIONS, current_version, migrate
from algobotd.store.writer import StoreWriter, connect

REQUIRED = {"bars", "models", "predictions", "orders", "order_events", "trades", "positions", "equity",
            "risk_events", "trading_state", "alerts", "news", "runs"}
NS = 1_000_000_000


def test_migrations_from_empty_and_idempotent(tmp_path) -> None:
    con = connect(tmp_path / "s.duckdb")
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert REQUIRED <= tables
    assert current_version(con) == len(MIGRATIONS)
    assert migrate(con) == len(MIGRATIONS)  # second run applies nothing
    assert con.execute("SELECT count(*) FROM schema_version").fetchone()[0] == len(MIGRATIONS)
    for table, cols in COLUMNS.items():
        actual = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        assert list(cols) == actual[: len(cols)], table


def test_newer_schema_is_refused(tmp_path) -> None:
    con = connect(tmp_path / "s.duckdb")
    con.execute("INSERT INTO schema_version VALUES (99, now())")
    with pytest.raises(RuntimeError, match="newer"):
        migrate(con)


def order_row(cid: str, seq: int, status: str = "new") -> tuple:
    return (cid, seq, 1_700_000_000 * NS, "AAA", "buy", 10, "market", None, "day", "signal", status, 0, 0.0,
            "", "", 1_700_000_000 * NS)


async def test_writer_batches_and_barrier(tmp_path) -> None:
    w = StoreWriter(tmp_path / "s.duckdb", flush_rows=10_000)
    w.add("orders", order_row("ab-00000001-AAA", 1))
    w.add_columns("bars", {
        "symbol": np.array(["AAA", "BBB"], dtype=object),
        "ts": np.array([1, 1], dtype=np.int64).view("datetime64[ns]") + np.timedelta64(1_700_000_000, "s"),
        "open": np.array([1.0, 2.0]), "high": np.array([1.5, 2.5]), "low": np.array([0.5, 1.5]),
        "close": np.array([1.2, 2.2]), "volume": np.array([100.0, 200.0]),
        "bid": np.array([1.19, 2.19]), "ask": np.array([1.21, 2.21]),
    })
    assert w.queued == 3
    await w.barrier()  # durable: on disk when it returns
    assert w.queued == 0
    # read through a second connection to the same database: committed rows only
    assert w.con.execute("SELECT count(*) FROM orders").fetchone()[0] == 1
    assert w.con.execute("SELECT count(*) FROM bars").fetchone()[0] == 2
    w.update_order(("ab-00000001-AAA", "accepted", 0, 0.0, "B1", "", 1_700_000_001 * NS))
    w.update_order(("ab-00000001-AAA", "filled", 10, 1.25, "", "", 1_700_000_002 * NS))  # last wins
    for _ in range(2):  # the same execution twice is stored once
        w.add("trades", ("ab-00000001-AAA-0", "ab-00000001-AAA", "AAA", "buy", 10, 1.25, 1.0, 1_700_000_002 * NS))
    await w.close()
    con = duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True)
    assert con.execute("SELECT status, filled_qty, avg_fill_price, broker_order_id FROM orders").fetchall() == [
        ("filled", 10, 1.25, "B1")
    ]
    assert con.execute("SELECT count(*) FROM trades").fetchone()[0] == 1


async def test_coded_symbols_and_block_constants(tmp_path) -> None:
    """Integer symbol codes (decoded by the store) and per-block constants read back as plain rows."""
    from algobotd.symbols import SymbolIndex

    w = StoreWriter(tmp_path / "s.duckdb", flush_rows=10_000)
    with pytest.raises(ValueError, match="symbol_index"):  # codes without names would lose the symbols
        w.add_columns("predictions", {"symbol": np.array([0]), "prediction": np.ones(1), "confidence": np.ones(1)},
                      {"ts": NS, "model_id": "m", "weights": "{}", "actual_return": np.nan})
    with pytest.raises(ValueError, match="columns"):  # a missing column fails at once, not in a retried flush
        w.add_columns("predictions", {"prediction": np.ones(1)}, {"ts": NS})
    w.symbol_index = SymbolIndex(["AAA", "BBB", "CCC"])
    for k, (model, weights) in enumerate((("m1", "{}"), ("m1", "{}"), ("m2", '{"a": 1}'))):
        w.add_columns("predictions", {"symbol": np.array([2, 0], dtype=np.int32), "prediction": np.array([k, -k], float),
                                      "confidence": np.array([0.5, 0.25])},
                      {"ts": (1_700_000_000 + k) * NS, "model_id": model, "weights": weights, "actual_return": np.nan})
    w.add_columns("predictions", {"symbol": np.array(["BBB"], dtype=object), "prediction": np.array([9.0]),
                                  "confidence": np.array([1.0]), "actual_return": np.array([0.5])},
                  {"ts": 1_700_000_009 * NS, "model_id": "m3", "weights": "{}"})  # names next to codes
    await w.close()
    con = duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True)
    rows = con.execute("SELECT epoch(ts)::BIGINT, symbol, model_id, prediction, confidence, weights, actual_return "
                       "FROM predictions").fetchall()
    assert rows[:6] == [
        (1_700_000_000, "CCC", "m1", 0.0, 0.5, "{}", rows[0][6]), (1_700_000_000, "AAA", "m1", -0.0, 0.25, "{}", rows[1][6]),
        (1_700_000_001, "CCC", "m1", 1.0, 0.5, "{}", rows[2][6]), (1_700_000_001, "AAA", "m1", -1.0, 0.25, "{}", rows[3][6]),
        (1_700_000_002, "CCC", "m2", 2.0, 0.5, '{"a": 1}', rows[4][6]),
        (1_700_000_002, "AAA", "m2", -2.0, 0.25, '{"a": 1}', rows[5][6]),
    ]
    assert all(r[6] is None for r in rows[:6])  # a NaN constant is NULL, as DuckDB reads NaN from numpy columns
    assert rows[6] == (1_700_000_009, "BBB", "m3", 9.0, 1.0, "{}", 0.5)


async def test_order_update_folded_into_its_insert(tmp_path) -> None:
    """An order opened and updated between two flushes is inserted with its latest status; a
    re-sent id that the table already holds still gets the update (the insert is ignored)."""
    w = StoreWriter(tmp_path / "s.duckdb", durable=False, flush_rows=10_000)
    w.add("orders", order_row("ab-00000001-AAA", 1))
    await w.flush()
    w.add("orders", order_row("ab-00000002-AAA", 2))
    w.update_order(("ab-00000002-AAA", "accepted", 0, 0.0, "B2", "", 1_700_000_001 * NS))
    w.update_order(("ab-00000002-AAA", "filled", 10, 1.5, "", "", 1_700_000_002 * NS))  # keeps B2
    await w.flush()
    w.add("orders", order_row("ab-00000001-AAA", 1))  # already stored: INSERT OR IGNORE skips it
    w.add("orders", order_row("ab-00000003-AAA", 3))
    w.update_order(("ab-00000001-AAA", "canceled", 0, 0.0, "B1", "gone", 1_700_000_003 * NS))
    w.update_order(("ab-00000003-AAA", "accepted", 0, 0.0, "B3", "", 1_700_000_003 * NS))
    await w.close()
    con = duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True)
    got = con.execute("SELECT client_order_id, status, filled_qty, avg_fill_price, broker_order_id, status_reason, "
                      "epoch(updated_at)::BIGINT FROM orders ORDER BY seq").fetchall()
    assert got == [("ab-00000001-AAA", "canceled", 0, 0.0, "B1", "gone", 1_700_000_003),
                   ("ab-00000002-AAA", "filled", 10, 1.5, "B2", "", 1_700_000_002),
                   ("ab-00000003-AAA", "accepted", 0, 0.0, "B3", "", 1_700_000_003)]


async def test_non_durable_barrier_does_not_wait(tmp_path) -> None:
    w = StoreWriter(tmp_path / "s.duckdb", durable=False, flush_rows=1000)
    w.add("orders", order_row("ab-00000001-AAA", 1))
    await w.barrier()
    assert w.queued == 1  # backtest result files do not pay a disk round trip per order batch
    await w.close()
    con = duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM orders").fetchone()[0] == 1


async def test_restore_reads_back_state(tmp_path) -> None:
    w = StoreWriter(tmp_path / "s.duckdb")
    w.add("orders", order_row("ab-00000001-AAA", 1, "filled"))
    w.add("orders", order_row("ab-00000002-AAA", 2, "accepted"))
    w.add("trades", ("ab-00000001-AAA-0", "ab-00000001-AAA", "AAA", "buy", 10, 1.25, 1.0, 1_700_000_002 * NS))
    w.add("trading_state", (1_700_000_003 * NS, "HALTED", "test", "operator:uid=0"))
    for i, eq in enumerate([100.0, 120.0, 110.0]):
        w.add("equity", ((1_700_000_000 + i) * NS, eq, eq, 0, 0, 0, 0, 0, eq, 0))
    w.add("bars", ("AAA", 1_700_000_000 * NS, 1, 1, 1, 1.5, 10, None, None))
    w.add("bars", ("AAA", 1_700_000_060 * NS, 1, 1, 1, 1.7, 10, 1.69, 1.71))
    w.add("bars", ("BBB", 1_700_000_000 * NS, 1, 1, 1, 9.0, 10, None, None))
    await w.close()
    st = restore(connect(tmp_path / "s.duckdb"))
    assert [f.exec_id for f in st.fills] == ["ab-00000001-AAA-0"]
    assert [(r.client_order_id, s) for r, _, s in st.open_orders] == [("ab-00000002-AAA", OrderStatus.ACCEPTED)]
    assert st.trading_state is not None and st.trading_state.state is TradingState.HALTED
    assert st.order_seq == 2
    assert st.high_water_mark == 120.0
    assert st.resume is not None and st.resume.last_ts == 1_700_000_060 * NS
    assert dict(zip(st.resume.symbols, st.resume.closes)) == {"AAA": 1.7, "BBB": 9.0}
    assert len(st.equity_curve) == 3 and not st.is_fresh


def test_restore_of_empty_store_is_fresh(tmp_path) -> None:
    st = restore(connect(tmp_path / "s.duckdb"))
    assert st.is_fresh and st.trading_state is None and st.resume is None


def _fail_once(monkeypatch, table: str) -> dict[str, int]:
    """Inject one failing INSERT into ``table`` (a disk-full or IO error in the real world)."""
    real = StoreWriter._insert
    left = {"n": 1}

    def flaky(con, t, block):
        if t == table and left["n"]:
            left["n"] -= 1
            raise duckdb.IOException("simulated: No space left on device")
        return real(con, t, block)

    monkeypatch.setattr(StoreWriter, "_insert", staticmethod(flaky))
    return left


async def test_malformed_rows_refused_when_added(tmp_path) -> None:
    """A row of the wrong width or for an unknown table fails in add(), not in a flush that would
    be retried forever; what was queued before is still written."""
    w = StoreWriter(tmp_path / "s.duckdb", durable=False, flush_rows=10_000)
    w.add("trades", ("x-1", "x", "AAA", "buy", 10, 1.25, 1.0, 1_700_000_002 * NS))
    with pytest.raises(ValueError, match="trades: row of 7 fields"):
        w.add("trades", ("x-2", "x", "AAA", "buy", 10, 1.25, 1.0))
    with pytest.raises(ValueError, match="trade: row of 8 fields"):
        w.add("trade", ("x-3", "x", "AAA", "buy", 10, 1.25, 1.0, 1_700_000_002 * NS))
    with pytest.raises(ValueError, match="order update of 6 fields"):
        w.update_order(("x", "filled", 10, 1.25, "", ""))
    assert w.queued == 1
    await w.close()
    con = duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True)
    assert con.execute("SELECT exec_id, qty, price FROM trades").fetchall() == [("x-1", 10, 1.25)]


async def test_failed_flush_loses_nothing(tmp_path, monkeypatch) -> None:
    w = StoreWriter(tmp_path / "s.duckdb")
    left = _fail_once(monkeypatch, "trades")
    w.add("trades", ("x-1", "x", "AAA", "buy", 10, 1.25, 1.0, 1_700_000_002 * NS))
    w.update_order(("x", "filled", 10, 1.25, "", "", 1_700_000_002 * NS))
    with pytest.raises(duckdb.IOException):
        await w.flush()
    assert left["n"] == 0 and w.queued == 2 and w.failures == 1  # back in the buffers
    w.add("trades", ("x-2", "x", "AAA", "buy", 5, 1.3, 1.0, 1_700_000_003 * NS))
    await w.flush()
    await w.close()
    con = duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True)
    assert [r[0] for r in con.execute("SELECT exec_id FROM trades ORDER BY exec_id").fetchall()] == ["x-1", "x-2"]


async def test_ticker_survives_a_failed_flush(tmp_path, monkeypatch) -> None:
    w = StoreWriter(tmp_path / "s.duckdb", flush_seconds=0.01)
    _fail_once(monkeypatch, "runs")
    w.start()
    w.add("runs", ("r1", "run", 1, None, "{}", None))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if w.rows_written:
            break
    assert not w._ticker.done() and w.failures == 1 and w.rows_written == 1
    w.add("runs", ("r2", "run", 2, None, "{}", None))
    await w.close()  # the final flush still happens
    con = duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
