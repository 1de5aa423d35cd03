"""Engine throughput and memory against backtrader on the same bars: prints figures, asserts nothing.

    .venv/bin/python bench/engine.py                  # 100 symbols x 5,000 one-minute bars, three cases
    .venv/bin/python bench/engine.py --quick          # 10 x 500 smoke run
    .venv/bin/python bench/engine.py --case sma       # one case only (data is still generated first)

Steps, each in its own process, one at a time:

1. ``gen``: the SimFeed (fixed seed) draws ``warm-up + bars`` bars per symbol (warm-up =
   config ``feed.warmup_bars``), written to a Parquet file (symbol, ts, OHLCV) in a temp dir.
2. ``backtrader``: loads that file into pandas (through DuckDB: pandas alone needs pyarrow
   for Parquet), one ``bt.feeds.PandasData`` per symbol, an SMA(10/30) crossover strategy
   (buy ``risk.max_position_pct`` of equity on a cross up, close on a cross down), default
   ``Cerebro()`` (preload, runonce, stdstats all on).
3. ``sma`` / ``baseline``: ``run_backtest(cfg, out, bars=..., data=<file>)`` with
   ``model.kind = "sma_cross"`` (10/30) or ``"baseline"``; results go to a temp DuckDB file
   and the state dir points into the temp dir (nothing is written under state/).

"load+run s" runs from the start of loading the file to the end of the run (config, file
read, feed construction, warm-up, the run, and for ours the result file's final flush);
module imports are timed apart ("import s"). "cpu s" is the process's CPU time over load+run:
above load+run when the store writer thread ran beside the engine on another core, about equal
when the machine was busy and gave the case one core. symbol-bars/s = symbols * bars / load+run s
(the warm-up bars are not counted, although both sides read and process them).
Peak RSS is ``getrusage(RUSAGE_SELF).ru_maxrss`` of the case's own process. Linux carries
the parent's high-water mark into a child across fork/exec, so this parent imports only
the standard library and stays small; it never holds the bars.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CASES = ("backtrader", "sma", "baseline")
RESULT_TAG = "BENCH_RESULT "
EXIT_MISSING_DEP = 3
FAST, SLOW = 10, 30


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _emit(result: dict[str, Any]) -> None:
    result.setdefault("peak_rss_mib", _peak_mib())
    print(RESULT_TAG + json.dumps(result), flush=True)


# --- children ---------------------------------------------------------------------------------


def _quiet_logs() -> None:
    from algobotd.ops import logging as oplog

    oplog.setup("warning", "json", stream=sys.stderr)  # keep stdout for the result line


def case_gen(args: argparse.Namespace) -> None:
    """Draw warm-up + bars from the SimFeed and write them to args.data (Parquet)."""
    import asyncio

    import duckdb
    import numpy as np

    from algobotd.config import load
    from algobotd.feeds.sim import SimFeed

    _quiet_logs()
    t0 = time.perf_counter()
    cfg = load(None, [f"feed.sim.symbols={args.symbols}", f"feed.sim.seed={args.seed}", 'feed.sim.speed="max"'],
               state_dir=str(Path(args.work) / "state-gen"))
    warmup = cfg.feed.warmup_bars

    async def draw() -> list[Any]:
        feed = SimFeed(cfg.feed, max_bars=args.bars)
        out = await feed.history(warmup)  # the bars before the start day, as a first start sees them
        out += [b async for b in feed.batches()]
        await feed.close()
        return out

    batches = asyncio.run(draw())
    symbols = batches[0].symbols
    n, t = len(symbols), len(batches)
    ts = np.repeat(np.array([b.ts for b in batches], dtype=np.int64), n).astype("datetime64[ns]")
    cols = {"symbol": np.tile(np.array(symbols, dtype=object), t), "ts": ts}
    for f in ("open", "high", "low", "close", "volume"):
        cols[f] = np.concatenate([getattr(b, f) for b in batches])
    del batches
    con = duckdb.connect()
    con.register("gen", cols)
    con.execute("COPY (SELECT CAST(symbol AS VARCHAR) AS symbol, CAST(ts AS TIMESTAMP) AS ts, open, high, low, "
                f"close, volume FROM gen ORDER BY ts, symbol) TO '{args.data}' (FORMAT parquet)")
    con.close()
    _emit({
        "case": "gen", "seconds": time.perf_counter() - t0, "rows": n * t, "symbols": n, "timestamps": t,
        "warmup": warmup, "initial_cash": cfg.broker.paper.initial_cash,
        "fraction": cfg.risk.max_position_pct, "bytes": os.path.getsize(args.data),
    })


def case_backtrader(args: argparse.Namespace) -> None:
    t_imp = time.perf_counter()
    try:
        import backtrader as bt
    except ImportError as exc:
        print(f"backtrader is not importable ({exc}); install the bench extra: pip install -e '.[bench]'",
              file=sys.stderr)
        sys.exit(EXIT_MISSING_DEP)
    import duckdb
    import pandas  # noqa: F401  (DuckDB's .df() builds the frame)

    import_s, import_mib = time.perf_counter() - t_imp, _peak_mib()

    class SmaCross(bt.Strategy):
        params = (("fast", FAST), ("slow", SLOW), ("fraction", 0.1))

        def __init__(self) -> None:
            self.cross = [bt.ind.CrossOver(bt.ind.SMA(d.close, period=self.p.fast),
                                           bt.ind.SMA(d.close, period=self.p.slow)) for d in self.datas]
            self.fills = self.rejected = self.entries = self.exits = 0

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                self.fills += 1
            elif order.status in (order.Margin, order.Rejected):
                self.rejected += 1

        def next(self) -> None:
            value = self.broker.getvalue()
            for d, x in zip(self.datas, self.cross):
                if x[0] > 0:
                    if not self.getposition(d).size:
                        size = int(value * self.p.fraction / d.close[0])
                        if size > 0:
                            self.buy(data=d, size=size)
                            self.entries += 1
                elif x[0] < 0 and self.getposition(d).size:
                    self.close(data=d)
                    self.exits += 1

    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    con = duckdb.connect()
    df = con.execute(f"SELECT symbol, ts, open, high, low, close, volume FROM read_parquet('{args.data}')").df()
    con.close()
    cerebro = bt.Cerebro()  # defaults: preload=True, runonce=True, stdstats=True
    cerebro.broker.setcash(args.cash)
    cerebro.broker.setcommission(commission=0.005, commtype=bt.CommInfoBase.COMM_FIXED, stocklike=True)
    n_symbols = 0
    for sym, g in df.groupby("symbol", sort=True):
        frame = g.set_index("ts")[["open", "high", "low", "close", "volume"]]
        cerebro.adddata(bt.feeds.PandasData(dataname=frame, openinterest=None), name=str(sym))
        n_symbols += 1
    timestamps = int(df["ts"].nunique())
    del df, g, frame
    cerebro.addstrategy(SmaCross, fast=FAST, slow=SLOW, fraction=args.fraction)
    strat = cerebro.run()[0]
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    _emit({
        "case": "backtrader", "seconds": seconds, "cpu_seconds": cpu, "import_seconds": import_s, "import_rss_mib": import_mib,
        "symbols": n_symbols, "bars": timestamps - args.warmup, "fills": strat.fills, "rejected": strat.rejected,
        "orders": strat.entries + strat.exits,
        "entries": strat.entries, "exits": strat.exits, "final_equity": cerebro.broker.getvalue(),
        "model": f"bt SMA({FAST}/{SLOW}) CrossOver", "version": bt.__version__,
    })


def case_ours(args: argparse.Namespace) -> None:
    t_imp = time.perf_counter()
    import asyncio

    from algobotd.backtest import run_backtest
    from algobotd.config import load

    _quiet_logs()
    import_s, import_mib = time.perf_counter() - t_imp, _peak_mib()
    model = ['model.kind="sma_cross"', f"model.fast={FAST}", f"model.slow={SLOW}"] if args.case == "sma" \
        else ['model.kind="baseline"']
    work = Path(args.work)
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    cfg = load(None, [*model, f"feed.warmup_bars={args.warmup}"], state_dir=str(work / f"state-{args.case}"))
    result = asyncio.run(run_backtest(cfg, work / f"out-{args.case}.duckdb", bars=args.bars, data=args.data))
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    peak = _peak_mib()
    import duckdb  # after the peak is taken: the sanity count below is not part of the case

    with duckdb.connect(str(work / f"out-{args.case}.duckdb"), read_only=True) as con:
        (orders,) = con.execute("SELECT count(*) FROM orders").fetchone()
    _emit({
        "case": args.case, "seconds": seconds, "cpu_seconds": cpu, "import_seconds": import_s, "import_rss_mib": import_mib,
        "peak_rss_mib": peak, "symbols": result["symbols"], "bars": result["bars"], "fills": result["trades"],
        "orders": orders,
        "final_equity": result["final_equity"], "model": result["model_id"],
        "engine_seconds": result["seconds"],
    })


# --- parent -----------------------------------------------------------------------------------


def _child(case: str, args: argparse.Namespace, extra: list[str]) -> tuple[dict[str, Any] | None, int, str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--case", case, "--symbols", str(args.symbols),
           "--bars", str(args.bars), "--seed", str(args.seed), "--work", args.work, "--data", args.data, *extra]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            result = json.loads(line[len(RESULT_TAG):])
    return result, proc.returncode, proc.stderr


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join("    " + s for s in text.strip().splitlines()[-lines:])


def run_parent(args: argparse.Namespace) -> int:
    cases = CASES if args.case == "all" else (args.case,)
    with tempfile.TemporaryDirectory(prefix="algobot-bench-") as tmp:
        args.work = tmp
        args.data = str(Path(tmp) / "bars.parquet")
        gen, rc, err = _child("gen", args, [])
        if gen is None or rc != 0:
            print(f"data generation failed (exit {rc}):\n{_tail(err)}", file=sys.stderr)
            return 1
        print(f"data: {gen['symbols']} symbols x {gen['timestamps'] - gen['warmup']} bars (+{gen['warmup']} warm-up) "
              f"= {gen['rows']:,} rows, SimFeed seed {args.seed}, Parquet {gen['bytes'] / 2**20:.1f} MiB, "
              f"generated in {gen['seconds']:.1f}s")
        args.fraction = gen["fraction"]
        extra = ["--warmup", str(gen["warmup"]), "--cash", repr(gen["initial_cash"]), "--fraction", repr(gen["fraction"])]
        results: dict[str, dict[str, Any]] = {}
        failed = False
        for case in cases:
            print(f"running {case} ...", file=sys.stderr, flush=True)
            res, rc, err = _child(case, args, extra)
            if rc == EXIT_MISSING_DEP:
                print(f"{case}: skipped: {err.strip().splitlines()[-1] if err.strip() else 'missing dependency'}")
                continue
            if res is None or rc != 0:
                print(f"{case}: failed (exit {rc}):\n{_tail(err)}")
                failed = True
                continue
            results[case] = res
    if results:
        print_table(results, args)
    if args.risk or (args.case == "all" and not args.quick):
        failed = _risk_report(args) or failed
    return 1 if failed else 0


def _risk_report(args: argparse.Namespace) -> bool:
    """The risk layer's per-batch cost for 500 symbols (bench/risk.py, its own process); True on failure."""
    cmd = [sys.executable, str(ROOT / "bench" / "risk.py"), "--symbols", "500", "--bars", str(min(args.bars, 1000)),
           "--seed", str(args.seed)]
    print("\nrisk layer on (sizing + stops + breakers + pre-trade), bench/risk.py:", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    print(proc.stdout.rstrip() if proc.returncode == 0 else f"failed (exit {proc.returncode}):\n{_tail(proc.stderr)}")
    return proc.returncode != 0


def print_table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    work = args.symbols * args.bars
    head = ("case", "load+run s", "symbol-bars/s", "cpu s", "peak RSS MiB", "import s", "RSS@import MiB", "orders",
            "fills", "model")
    rows = []
    for case, r in results.items():
        rows.append((case, f"{r['seconds']:.2f}", f"{work / r['seconds']:,.0f}", f"{r['cpu_seconds']:.2f}",
                     f"{r['peak_rss_mib']:.1f}", f"{r['import_seconds']:.2f}", f"{r['import_rss_mib']:.1f}",
                     str(r["orders"]), str(r["fills"]), r["model"]))
    widths = [max(len(row[i]) for row in (head, *rows)) for i in range(len(head))]
    print()
    for row in (head, *rows):
        cells = (c.ljust(w) if i in (0, 9) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
        print("  ".join(cells).rstrip())
    if results.get("backtrader", {}).get("rejected"):
        print(f"note: backtrader had {results['backtrader']['rejected']} orders rejected for margin "
              f"(entries of {args.fraction:.0%} of equity after the cash was used up)")
    if any(c in results for c in ("sma", "baseline")):
        print("note: ours counts each partial fill (broker.paper.participation) as a fill")
    for case, r in results.items():
        if r["symbols"] != args.symbols or r["bars"] != args.bars:
            print(f"warning: {case} covered {r['symbols']} symbols x {r['bars']} bars, expected {args.symbols} x {args.bars}")
        if r["fills"] == 0:
            print(f"warning: {case} did not trade")
    bt = results.get("backtrader")
    if bt:
        print()
        for case in ("sma", "baseline"):
            r = results.get(case)
            if r:
                print(f"{case} / backtrader: throughput x{bt['seconds'] / r['seconds']:.1f}, "
                      f"peak RSS x{r['peak_rss_mib'] / bt['peak_rss_mib']:.2f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", choices=("all", *CASES, "gen"), default="all", help="run one case (default: all three)")
    p.add_argument("--symbols", type=int, default=100)
    p.add_argument("--bars", type=int, default=5000, help="bars per symbol after the warm-up")
    p.add_argument("--quick", action="store_true", help="10 symbols x 500 bars (smoke test)")
    p.add_argument("--seed", type=int, default=42, help="SimFeed seed")
    p.add_argument("--risk", action="store_true", help="also report the risk layer's per-batch cost for 500 symbols "
                   "(always with the full run)")
    # Set by the parent for the child processes.
    for flag, kind in (("--data", str), ("--work", str), ("--warmup", int), ("--cash", float), ("--fraction", float)):
        p.add_argument(flag, type=kind, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.symbols, args.bars = 10, 500
    if args.symbols < 1 or args.bars < 1:
        p.error("--symbols and --bars must be >= 1")
    if args.data is None:
        if args.case == "gen":
            p.error("--case gen is internal (needs --data and --work)")
        return run_parent(args)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    {"gen": case_gen, "backtrader": case_backtrader, "sma": case_ours, "baseline": case_ours}[args.case](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
