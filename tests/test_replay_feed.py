"""ReplayFeed: DuckDB / CSV / Parquet round trips, edge validation, gaps, errors, resume."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import numpy as np
import pytest

from algobotd.config import FeedConfig, ReplayConfig
from algobotd.domain import NS_PER_SECOND, BarBatch
from algobotd.feeds.base import ResumePoint
from algobotd.feeds.replay import ReplayFeed

T0 = 1_704_205_800 * NS_PER_SECOND  # 2024-01-02 14:30 UTC
MIN = 60 * NS_PER_SECOND
Row = tuple[str | None, int | None, float, float, float, float, float]


def cfg(symbols: list[str] | None = None, speed: float | str = "max", bar_seconds: int = 60) -> FeedConfig:
    return FeedConfig(kind="replay", symbols=symbols or [], bar_seconds=bar_seconds,
                      replay=ReplayConfig(path="", speed=speed))


def clean_rows(n_ts: int = 30, symbols: tuple[str, ...] = ("AAA", "BBB", "CCC")) -> list[Row]:
    rng = np.random.default_rng(3)
    rows: list[Row] = []
    for t in range(n_ts):
        for k, s in enumerate(symbols):
            o = 50.0 + 10 * k + rng.normal()
            c = o * np.exp(rng.normal(0, 0.002))
            rows.append((s, T0 + t * MIN, o, max(o, c) + 0.05, min(o, c) - 0.05, c, float(rng.integers(100, 9000))))
    rng.shuffle(rows)  # file order must not matter
    return rows


def write(tmp_path: Path, rows: list[Row], fmt: str, ts_kind: str = "timestamp", name: str = "bars") -> Path:
    """Write rows with duckdb as fmt in {duckdb, csv, parquet}; ts as TIMESTAMP, ns or seconds."""
    con = duckdb.connect(":memory:")
    con.execute("CREATE TABLE src (symbol VARCHAR, ts BIGINT, open DOUBLE, high DOUBLE, low DOUBLE, "
                "close DOUBLE, volume DOUBLE)")
    con.executemany("INSERT INTO src VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    ts_sql = {"timestamp": "make_timestamp(ts // 1000)", "ns": "ts", "seconds": "ts // 1000000000",
              "iso": "strftime(make_timestamp(ts // 1000), '%Y-%m-%dT%H:%M:%SZ')"}[ts_kind]
    select = f"SELECT symbol, {ts_sql} AS ts, open, high, low, close, volume FROM src"
    path = tmp_path / f"{name}_{ts_kind}.{fmt}"
    if fmt == "duckdb":
        con.execute(f"ATTACH '{path}' AS out")
        con.execute(f"CREATE TABLE out.bars AS {select}")
        con.execute("DETACH out")
    elif fmt == "csv":
        con.execute(f"COPY ({select}) TO '{path}' (HEADER)")
    else:
        con.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")
    con.close()
    return path


def expected(rows: list[Row]) -> dict[tuple[str, int], Row]:
    return {(r[0], r[1]): r for r in rows}  # type: ignore[misc]


def check_against(batches: list[BarBatch], rows: list[Row]) -> None:
    exp = expected(rows)
    seen = 0
    for b in batches:
        for i, s in enumerate(b.symbols):
            r = exp.get((s, b.ts))
            if r is None:
                assert not b.valid[i] and np.isnan(b.close[i])
                continue
            seen += 1
            assert b.valid[i]
            got = (b.open[i], b.high[i], b.low[i], b.close[i], b.volume[i])
            np.testing.assert_allclose(got, r[2:], rtol=1e-12)
    assert seen == len(exp)


@pytest.mark.parametrize(("fmt", "ts_kind"), [
    ("duckdb", "timestamp"), ("duckdb", "ns"), ("csv", "iso"), ("csv", "seconds"), ("csv", "ns"),
    ("parquet", "timestamp"), ("parquet", "ns"),
])
async def test_round_trip(tmp_path: Path, fmt: str, ts_kind: str) -> None:
    rows = clean_rows()
    path = write(tmp_path, rows, fmt, ts_kind)
    feed = ReplayFeed(cfg(), str(path))
    assert feed.symbols == ("AAA", "BBB", "CCC")
    got = [b async for b in feed.batches(None)]
    assert [b.ts for b in got] == [T0 + t * MIN for t in range(30)]
    check_against(got, rows)
    assert feed.dropped == {}
    assert all(np.all(np.isnan(b.bid)) and np.all(np.isnan(b.ask)) for b in got)


async def test_duckdb_file_opened_read_only(tmp_path: Path) -> None:
    path = write(tmp_path, clean_rows(), "duckdb")
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    feed = ReplayFeed(cfg(), str(path))
    assert len(feed) == 30
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert not Path(str(path) + ".wal").exists()


async def test_path_from_config(tmp_path: Path) -> None:
    path = write(tmp_path, clean_rows(5), "parquet")
    feed = ReplayFeed(FeedConfig(kind="replay", replay=ReplayConfig(path=str(path))))
    assert len([b async for b in feed.batches(None)]) == 5


async def test_bad_rows_dropped_and_counted(tmp_path: Path) -> None:
    good = clean_rows(10)
    nan = float("nan")
    t = T0 + 3 * MIN
    bad: list[Row] = [
        ("AAA", T0 + 20 * MIN, nan, 10.0, 9.0, 9.5, 100.0),  # NaN
        ("BBB", T0 + 21 * MIN, 10.0, 10.5, 9.5, 10.0, nan),  # NaN volume
        ("AAA", T0 + 22 * MIN, 0.0, 10.0, 9.0, 9.5, 100.0),  # non-positive
        ("CCC", T0 + 23 * MIN, 10.0, 11.0, -1.0, 9.5, 100.0),  # non-positive low
        ("BBB", T0 + 24 * MIN, 10.0, 9.0, 11.0, 10.0, 100.0),  # high < low
        ("CCC", T0 + 25 * MIN, 10.0, 10.2, 9.0, 10.5, 100.0),  # high < close
        ("AAA", T0 + 26 * MIN, 10.0, 11.0, 10.1, 10.5, 100.0),  # low > open
        ("BBB", T0 + 27 * MIN, 10.0, 11.0, 9.0, 10.5, -5.0),  # negative volume
        ("CCC", t, 1.0, 1.0, 1.0, 1.0, 1.0),  # duplicate of an existing (CCC, t) row
        ("", T0 + 28 * MIN, 10.0, 11.0, 9.0, 10.5, 5.0),  # no symbol
        ("AAA", None, 10.0, 11.0, 9.0, 10.5, 5.0),  # no timestamp
    ]
    good_sorted = sorted(good, key=lambda r: (r[1], r[0]))  # type: ignore[arg-type]
    rows = good_sorted + bad  # the duplicate comes later in the file: the first one wins
    for fmt in ("duckdb", "csv", "parquet"):
        feed = ReplayFeed(cfg(), str(write(tmp_path, rows, fmt, "ns", name=f"bad_{fmt}")))
        assert feed.dropped == {"nan": 2, "non_positive_price": 2, "high_below_low": 1,
                                "ohlc_inconsistent": 2, "negative_volume": 1, "duplicate": 1,
                                "bad_symbol": 1, "bad_ts": 1}, fmt
        got = [b async for b in feed.batches(None)]
        assert [b.ts for b in got] == [T0 + k * MIN for k in range(10)]  # bad-only timestamps vanish
        check_against(got, good)
        for b in got:
            v = b.valid
            assert np.all(np.isfinite(b.close[v])) and np.all(b.high[v] >= b.low[v])


async def test_missing_symbol_is_a_gap(tmp_path: Path) -> None:
    rows = [r for r in clean_rows(6) if not (r[0] == "BBB" and r[1] in (T0 + 2 * MIN, T0 + 4 * MIN))]
    feed = ReplayFeed(cfg(), str(write(tmp_path, rows, "parquet", "ns")))
    got = [b async for b in feed.batches(None)]
    assert len(got) == 6
    for b in got:
        gap = b.ts in (T0 + 2 * MIN, T0 + 4 * MIN)
        assert b.valid.tolist() == [True, not gap, True]
        assert np.isnan(b.close[1]) == gap and np.isnan(b.volume[1]) == gap
    assert feed.dropped == {}


async def test_configured_universe_and_refs(tmp_path: Path) -> None:
    rows = clean_rows(5, ("AAA", "BBB", "SPY"))
    feed = ReplayFeed(cfg(["BBB", "ZZZ"]), str(write(tmp_path, rows, "csv", "ns")))
    assert feed.symbols == ("BBB", "ZZZ")
    got = [b async for b in feed.batches(None)]
    exp = expected(rows)
    for b in got:
        assert b.valid.tolist() == [True, False]
        assert b.close[0] == pytest.approx(exp[("BBB", b.ts)][5])
        assert b.refs == {"SPY": pytest.approx(exp[("SPY", b.ts)][5])}


async def test_missing_columns_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "novol.csv"
    bad.write_text("symbol,ts,open,high,low,close\nAAA,2024-01-02 14:30:00,1,1,1,1\n")
    with pytest.raises(ValueError) as err:
        ReplayFeed(cfg(), str(bad))
    assert "novol.csv" in str(err.value) and "volume" in str(err.value)
    with pytest.raises(ValueError, match="nope.parquet"):
        ReplayFeed(cfg(), str(tmp_path / "nope.parquet"))
    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).execute("CREATE TABLE other (x INT)").close()
    with pytest.raises(ValueError, match="bars"):
        ReplayFeed(cfg(), str(db))
    with pytest.raises(ValueError):
        ReplayFeed(cfg())


async def test_history_then_batches_and_resume(tmp_path: Path) -> None:
    path = str(write(tmp_path, clean_rows(20), "parquet"))
    feed = ReplayFeed(cfg(), path)
    hist = await feed.history(5, None)
    live = [b async for b in feed.batches(None)]
    assert [b.ts for b in hist] == [T0 + k * MIN for k in range(5)]
    assert [b.ts for b in live] == [T0 + k * MIN for k in range(5, 20)]
    rp = ResumePoint(T0 + 11 * MIN, feed.symbols, live[6].close.copy())
    again = ReplayFeed(cfg(), path)
    h2 = await again.history(4, rp)
    assert [b.ts for b in h2] == [T0 + k * MIN for k in range(8, 12)]
    rest = [b async for b in again.batches(rp)]
    assert [b.ts for b in rest] == [T0 + k * MIN for k in range(12, 20)]
    assert await again.history(100, None) and len(await again.history(100, None)) == 20


async def test_replay_pacing_lower_bound(tmp_path: Path) -> None:
    feed = ReplayFeed(cfg(speed=1000.0, bar_seconds=1), str(write(tmp_path, clean_rows(21), "parquet")))
    t0 = time.perf_counter()
    got = [b async for b in feed.batches(None)]
    assert len(got) == 21
    assert time.perf_counter() - t0 >= 0.015
