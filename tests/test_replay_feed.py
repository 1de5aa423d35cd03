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
from algobotd.feeds.replay import ReplayFeed, _in_file_order, _time_major_order

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


async def test_time_major_file_with_duplicates_keeps_the_first(tmp_path: Path) -> None:
    """A file already in (ts, symbol) order skips the sort; duplicates still resolve to the first row."""
    good = sorted(clean_rows(8), key=lambda r: (r[1], r[0]))  # type: ignore[arg-type]
    at = next(i for i, r in enumerate(good) if r[0] == "BBB" and r[1] == T0 + 2 * MIN)
    second = ("BBB", T0 + 2 * MIN, 1.0, 1.0, 1.0, 1.0, 1.0)
    rows = good[: at + 1] + [second] + good[at + 1:]  # the later copy right after the original
    shuffled = list(rows)
    np.random.default_rng(5).shuffle(shuffled)  # but keep the original before its copy
    shuffled.remove(second)
    shuffled.insert(shuffled.index(good[at]) + 1, second)
    for name, file_rows in (("ordered", rows), ("shuffled", shuffled)):
        feed = ReplayFeed(cfg(), str(write(tmp_path, file_rows, "parquet", "ns", name=name)))
        assert feed.dropped == {"duplicate": 1}, name
        got = [b async for b in feed.batches(None)]
        assert [b.ts for b in got] == [T0 + k * MIN for k in range(8)]
        check_against(got, good)


def test_rows_back_in_file_order_and_sorted_time_major() -> None:
    rng = np.random.default_rng(1)
    n = 1000
    rn = rng.permutation(n)
    data = {"rn": rn, "x": rn * 2.0}  # each row's value follows its file position
    back = _in_file_order(data)
    assert back["rn"].tolist() == list(range(n)) and back["x"].tolist() == [2.0 * k for k in range(n)]
    gaps = {"rn": np.array([7, 3, 12]), "x": np.array([7.0, 3.0, 12.0])}  # not 0..n-1: sorted instead
    assert _in_file_order(gaps)["x"].tolist() == [3.0, 7.0, 12.0]
    repeats = {"rn": np.array([2, 0, 0]), "x": np.array([2.0, 0.5, 0.25])}  # spans 0..n-1, not a permutation
    assert _in_file_order(repeats)["x"].tolist() == [0.5, 0.25, 2.0]
    ts = np.array([2, 1, 1, 2, 1])
    col = np.array([0, 1, 0, 0, 1])
    rn = np.arange(5)
    # (ts, col, file row): (1,0,2) (1,1,1) (1,1,4) (2,0,0) (2,0,3)
    assert _time_major_order(np.arange(5), ts, col, rn).tolist() == [2, 1, 4, 0, 3]
    ordered = np.array([0, 2, 3])
    assert _time_major_order(ordered, np.array([1, 0, 1, 1]), np.array([0, 9, 1, 1]), np.arange(4)).tolist() \
        == [0, 2, 3]


async def test_parquet_with_its_own_file_row_number_column(tmp_path: Path) -> None:
    """A column named like DuckDB's row-number option must not clash with it (the file is read
    through a temp table instead)."""
    rows = clean_rows(6)
    path = tmp_path / "extra.parquet"
    con = duckdb.connect(":memory:")
    con.execute("CREATE TABLE src (symbol VARCHAR, ts BIGINT, open DOUBLE, high DOUBLE, low DOUBLE, "
                "close DOUBLE, volume DOUBLE)")
    con.executemany("INSERT INTO src VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute(f"COPY (SELECT *, 7 AS file_row_number FROM src) TO '{path}' (FORMAT parquet)")
    con.close()
    feed = ReplayFeed(cfg(), str(path))
    got = [b async for b in feed.batches(None)]
    assert len(got) == 6 and feed.dropped == {}
    check_against(got, rows)


@pytest.mark.parametrize("gap", [False, True])
async def test_quotes_replayed_and_crossed_ones_dropped(tmp_path: Path, gap: bool) -> None:
    """bid/ask columns ride along (a dense file takes the no-copy path, one with a gap the
    scatter); a crossed or non-positive quote becomes no quote, the bar itself stays."""
    rows = sorted(clean_rows(4), key=lambda r: (r[1], r[0]))  # type: ignore[arg-type]
    if gap:
        rows = [r for r in rows if not (r[0] == "CCC" and r[1] == T0 + 3 * MIN)]
    quotes = {(r[0], r[1]): (r[5] - 0.01, r[5] + 0.01) for r in rows}
    quotes[("AAA", T0 + MIN)] = (10.0, 9.0)  # crossed
    quotes[("BBB", T0 + 2 * MIN)] = (0.0, 9.0)  # non-positive bid
    path = tmp_path / f"quotes_{gap}.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE bars (symbol VARCHAR, ts BIGINT, open DOUBLE, high DOUBLE, low DOUBLE, "
                "close DOUBLE, volume DOUBLE, bid DOUBLE, ask DOUBLE)")
    con.executemany("INSERT INTO bars VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [(*r, *quotes[(r[0], r[1])]) for r in rows])
    con.close()
    feed = ReplayFeed(cfg(), str(path))
    got = [b async for b in feed.batches(None)]
    check_against(got, rows)
    for b in got:
        for i, s in enumerate(b.symbols):
            q = quotes.get((s, b.ts))
            if q is None or not (q[0] > 0 and q[1] >= q[0]):
                assert np.isnan(b.bid[i]) and np.isnan(b.ask[i]), (s, b.ts)
            else:
                assert (b.bid[i], b.ask[i]) == q
