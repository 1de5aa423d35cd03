"""``algobotd mc``: many paths per scenario, each a full engine run, on a process pool or Ray.

Paths are independent pure functions of (config, scenario, seed, index), so results are the
same for any number of workers or a Ray cluster: they are gathered and sorted by
(scenario, index) before anything is summarised.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from algobotd.config import Config, ConfigError
from algobotd.validate.ensemble_bridge import require_champion
from algobotd.validate import report
from algobotd.validate.paths import LOCKSTEP_PATHS, PathResult, lockstep_allowed, path_config, run_chunk
from algobotd.validate.pool import run_tasks
from algobotd.validate.results import clean, num, pct, prepare_result_file, table, write_tables
from algobotd.validate.scenarios import SCENARIOS

DEFAULT_N = 10_000
PERCENTILES = (5, 25, 50, 75, 95)
PATH_FIELDS = ("total_return", "max_drawdown", "sharpe", "sortino", "hit_rate", "turnover", "trades",
               "breaker_trips", "halts", "reductions", "buy_and_hold_return", "final_equity")


@dataclass(frozen=True)
class McSpec:
    scenarios: tuple[str, ...] = SCENARIOS
    n: int = DEFAULT_N
    symbols: int = 20
    bars: int = 252
    seed: int = 42
    workers: int = 1
    ray_address: str | None = None
    keep_curves: int = 40  # equity curves per scenario stored for the report
    chunk: int = 0  # paths per task; 0 = automatic


def parse_scenarios(text: str | None) -> tuple[str, ...]:
    if not text:
        return SCENARIOS
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in names if s not in SCENARIOS]
    if bad or not names:
        raise ConfigError("--scenarios", f"unknown scenario(s) {bad} (known: {','.join(SCENARIOS)})")
    return names


def plan(spec: McSpec, lockstep: bool = False) -> list[list[tuple[str, int]]]:
    """Chunks of (scenario, index), interleaved so every chunk costs about the same. A lockstep
    chunk is one engine run (up to ``LOCKSTEP_PATHS`` books): as full as the workers allow."""
    tasks = [(sc, i) for i in range(spec.n) for sc in spec.scenarios]
    workers = max(1, spec.workers)
    if spec.chunk:
        size = spec.chunk
    elif lockstep:
        size = max(1, min(LOCKSTEP_PATHS, -(-len(tasks) // workers)))
    else:
        size = max(1, min(64, len(tasks) // (workers * 8)))
    return [tasks[k : k + size] for k in range(0, len(tasks), size)]


def run_paths(cfg: Config, spec: McSpec) -> tuple[list[PathResult], float]:
    """All paths, sorted by (scenario, index), and the wall seconds they took."""
    cfg = path_config(cfg)
    chunks = plan(spec, lockstep_allowed(cfg, tape=True))
    t0 = time.perf_counter()
    tasks = [(cfg, c, spec.seed, spec.symbols, spec.bars, spec.keep_curves) for c in chunks]
    res = [r for part in run_tasks(run_chunk, tasks, spec.workers, spec.ray_address, 'mc chunks') for r in part]
    seconds = time.perf_counter() - t0
    order = {sc: k for k, sc in enumerate(spec.scenarios)}
    res.sort(key=lambda r: (order[r.scenario], r.index))
    return res, seconds


def summarize_scenario(rows: list[PathResult], dd_limit: float) -> dict[str, Any]:
    col = {f: np.array([getattr(r, f) for r in rows], dtype=float) for f in PATH_FIELDS}
    out: dict[str, Any] = {"n": len(rows)}
    for name, key in (("return", "total_return"), ("max_drawdown", "max_drawdown"), ("sharpe", "sharpe"),
                      ("breaker_trips", "breaker_trips")):
        for p in PERCENTILES:
            out[f"{name}_p{p}"] = float(np.percentile(col[key], p))
    out.update({
        "return_mean": float(col["total_return"].mean()),
        "halts_mean": float(col["halts"].mean()),
        "reductions_mean": float(col["reductions"].mean()),
        "breaker_trips_mean": float(col["breaker_trips"].mean()),
        "prob_halt": float(np.mean(col["halts"] > 0)),
        "prob_loss": float(np.mean(col["total_return"] < 0)),
        "prob_drawdown_beyond_limit": float(np.mean(col["max_drawdown"] > dd_limit)),
        "drawdown_limit": dd_limit,
        "trades_mean": float(col["trades"].mean()),
        "turnover_p50": float(np.median(col["turnover"])),
        "buy_and_hold_return_p50": float(np.median(col["buy_and_hold_return"])),
        "prob_beats_buy_and_hold": float(np.mean(col["total_return"] > col["buy_and_hold_return"])),
    })
    return out


def run_montecarlo(cfg: Config, spec: McSpec, out: Path) -> dict[str, Any]:
    if spec.n < 1:
        raise ConfigError("--n", f"must be >= 1, got {spec.n}")
    if spec.workers < 1:
        raise ConfigError("--workers", f"must be >= 1, got {spec.workers}")
    require_champion(cfg)
    prepare_result_file(cfg, out, "mc")
    started = time.time_ns()
    paths, seconds = run_paths(cfg, spec)
    limit = cfg.risk.max_drawdown_pct
    by: dict[str, list[PathResult]] = {sc: [] for sc in spec.scenarios}
    for r in paths:
        by[r.scenario].append(r)
    result: dict[str, Any] = {
        "scenarios": {sc: summarize_scenario(rows, limit) for sc, rows in by.items()},
        "paths_per_second": len(paths) / seconds if seconds > 0 else 0.0,
        "paths": len(paths), "seconds": seconds, "symbols": spec.symbols, "bars": spec.bars, "seed": spec.seed,
        "workers": spec.workers, "backend": "ray" if spec.ray_address is not None else "process-pool",
        "model": cfg.model.kind, "model_ids": sorted({p.model_id for p in paths}),
        "out": str(out), "report": str(out.with_suffix(".html")),
    }
    write_tables(out, "mc", cfg, result, started, time.time_ns(), _tables(paths, result))
    write_report(out.with_suffix(".html"), paths, result)
    return clean(result)


def _tables(paths: list[PathResult], result: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    cols: dict[str, Any] = {"scenario": np.array([p.scenario for p in paths], dtype=object),
                            "path": np.array([p.index for p in paths], dtype=np.int64)}
    cols.update({f: np.array([getattr(p, f) for p in paths]) for f in PATH_FIELDS})
    summ = result["scenarios"]
    keys = sorted({k for v in summ.values() for k in v})
    summary = {"scenario": np.array(list(summ), dtype=object)}
    summary.update({k: np.array([float(v.get(k, np.nan)) for v in summ.values()]) for k in keys})
    curves = [(p.scenario, p.index, p.equity) for p in paths if p.equity is not None]
    lengths = [len(e) for _, _, e in curves]
    curve_cols = {
        "scenario": np.repeat(np.array([c[0] for c in curves], dtype=object), lengths),
        "path": np.repeat(np.array([c[1] for c in curves], dtype=np.int64), lengths),
        "bar": np.concatenate([np.arange(n) for n in lengths]) if curves else np.empty(0, np.int64),
        "equity": np.concatenate([e for _, _, e in curves]).astype(float) if curves else np.empty(0),
    }
    return {"mc_paths": cols, "mc_summary": summary, "mc_curves": curve_cols}


def write_report(path: Path, paths: list[PathResult], result: dict[str, Any]) -> Path:
    from algobotd.validate.metrics import drawdown_curve

    sections = [("Summary", report.html_table(*summary_rows(result)))]
    for sc, s in result["scenarios"].items():
        rows = [p for p in paths if p.scenario == sc]
        curves = np.array([p.equity for p in rows if p.equity is not None], dtype=float)
        charts = []
        if curves.size:
            lo, mid, hi = np.percentile(curves, [5, 50, 95], axis=0)
            charts.append(report.line_chart(f"{sc}: equity (p5-p95 band of {len(curves)} stored paths)",
                                            [("median", mid), *[(f"path {i}", c) for i, c in enumerate(curves[:3])]],
                                            "{:,.0f}", band=(lo, hi)))
            dd = np.array([drawdown_curve(c) for c in curves])
            charts.append(report.line_chart(f"{sc}: drawdown", [("median", np.median(dd, axis=0)),
                                                                ("p95", np.percentile(dd, 95, axis=0))], "{:.1%}"))
        charts.append(report.histogram(f"{sc}: total return over {s['n']} paths", np.array([p.total_return for p in rows])))
        charts.append(report.histogram(f"{sc}: max drawdown", np.array([p.max_drawdown for p in rows])))
        sections.append((sc, "".join(charts)))
    intro = (f"<p>{result['paths']} paths, {result['symbols']} symbols x {result['bars']} daily bars, seed "
             f"{result['seed']}, {result['workers']} worker(s) ({result['backend']}), "
             f"{result['paths_per_second']:.1f} paths/s. Each path is a full engine run with costs.</p>")
    return report.write_html(path, "algobotd Monte Carlo", intro, sections)


def summary_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["scenario", "n", "ret p5", "ret p50", "ret p95", "mdd p50", "mdd p95", "sharpe p50", "P(loss)",
              f"P(dd>{result['scenarios'] and next(iter(result['scenarios'].values()))['drawdown_limit']:.0%})",
              "halts", "trips", "B&H p50"]
    rows = [[sc, str(s["n"]), pct(s["return_p5"]), pct(s["return_p50"]), pct(s["return_p95"]),
             pct(s["max_drawdown_p50"], sign=False), pct(s["max_drawdown_p95"], sign=False), num(s["sharpe_p50"]),
             f"{s['prob_loss']:.0%}", f"{s['prob_drawdown_beyond_limit']:.0%}", num(s["halts_mean"]),
             num(s["breaker_trips_mean"]), pct(s["buy_and_hold_return_p50"])]
            for sc, s in result["scenarios"].items()]
    return header, rows


def format_mc(result: dict[str, Any]) -> str:
    header, rows = summary_rows(result)
    return (table(rows, header) + f"\n{result['paths']} paths in {result['seconds']:.1f}s "
            f"({result['paths_per_second']:.1f} paths/s, {result['workers']} worker(s), {result['backend']}); "
            f"results: {result['out']}, report: {result['report']}")
