"""``algobotd walkforward``: rolling retrain-then-trade folds over history, on the live engine.

Fold k (bar indices, half-open):
    train  = [test_start - purge - train_window, test_start - purge)
    test   = [test_start, test_start + test_window),   test_start = train_window + purge + k * test_window
Training samples are further cut so every label (close t -> close t + horizon) ends strictly
before the test window's first bar; ``Fold.label_end_max_ns < Fold.test_start_ns`` is asserted.
"Retraining" the momentum baseline means choosing its lookback by in-window IC (it has no fitted
weights); inside the window that choice uses purged, embargoed K-fold CV (``tune.cv_ic``).
Each test window is then traded by a fresh engine (costs, sizing, stops, breakers), warmed up
on the bars just before it, next to the untuned baseline and buy-and-hold on the same bars.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from algobotd.config import Config, ConfigError
from algobotd.domain import BarBatch
from algobotd.validate import metrics, report
from algobotd.validate.ensemble_bridge import base_model_ic, is_ensemble, train_on, warmup_bars
from algobotd.validate.paths import counts, drive
from algobotd.validate.pool import run_tasks
from algobotd.validate.results import clean, num, pct, prepare_result_file, table, write_tables
from algobotd.validate.signals import close_matrix, forward_returns, label_end, with_model

KEYS = ("total_return", "sharpe", "max_drawdown", "turnover", "ic", "buy_and_hold_return")


@dataclass(frozen=True)
class WfSpec:
    data: str | None = None
    bars: int | None = None
    train_window: int | None = None
    test_window: int | None = None
    purge: int | None = None
    embargo: int | None = None
    workers: int = 1
    ray_address: str | None = None
    horizon: int = 1


@dataclass(frozen=True)
class Fold:
    k: int
    train_start: int
    train_end: int  # exclusive; training *samples* stop earlier (label_end_max_ns)
    test_start: int
    test_end: int  # exclusive
    train_start_ns: int
    last_train_sample: int  # last bar whose label is used for training
    label_end_max_ns: int
    test_start_ns: int
    test_end_ns: int


def make_folds(ts: np.ndarray, train: int, test: int, purge: int, horizon: int) -> list[Fold]:
    n = len(ts)
    folds = []
    k = 0
    while True:
        test_start = train + purge + k * test
        test_end = min(test_start + test, n)
        if test_end - test_start < max(2, test // 2):  # a stub fold at the end says nothing
            break
        a, b = test_start - purge - train, test_start - purge
        last = min(b, test_start - horizon) - 1  # label of `last` ends at test_start - 1 at the latest
        end_ns = int(label_end(ts, np.array([last]), horizon)[0])
        fold = Fold(k, a, b, test_start, test_end, int(ts[a]), last, end_ns, int(ts[test_start]), int(ts[test_end - 1]))
        if not (fold.label_end_max_ns < fold.test_start_ns and fold.train_end <= fold.test_start):
            raise AssertionError(f"fold {k} would train on data at/after its test window: {fold}")
        folds.append(fold)
        k += 1
    return folds


async def _load(cfg: Config, data: str | None, bars: int) -> list[BarBatch]:
    from algobotd.feeds import make_feed

    cfg = dataclasses.replace(cfg, feed=dataclasses.replace(
        cfg.feed, sim=dataclasses.replace(cfg.feed.sim, speed="max"),
        replay=dataclasses.replace(cfg.feed.replay, speed="max")))
    feed = make_feed(cfg, data)
    out: list[BarBatch] = []
    async for b in feed.batches(None):
        out.append(b)
        if not data and len(out) >= bars:
            break
    await feed.close()
    return out


def _stats(equity: np.ndarray, initial: float, bar_seconds: int, traded: float) -> dict[str, float]:
    s = metrics.summarize(equity, initial, bar_seconds)
    s["turnover"] = metrics.turnover(traded, float(np.mean(equity))) if equity.size else 0.0
    return s


def run_fold(cfg: Config, fold: Fold, bars: list[BarBatch], offset: int, horizon: int, purge: int,
             embargo: int) -> dict[str, Any]:
    """One fold in a worker: select on the train window, trade the test window (strategy and baseline)."""
    from algobotd.validate.tune import select_baseline

    rel = lambda i: i - offset  # noqa: E731  bars[] starts at absolute index `offset`
    symbols = bars[0].symbols
    n_sym = len(symbols)
    ts, close = close_matrix(bars)
    fwd = forward_returns(close, horizon)
    # training data: everything up to the last training sample's label end (history before the
    # train window only warms the model up); none of it at or after the test window
    train_bars = bars[: rel(fold.last_train_sample) + horizon + 1]
    assert train_bars[-1].ts <= fold.label_end_max_ns < fold.test_start_ns
    bundle = None
    if is_ensemble(cfg):  # train the ensemble on this fold's training bars only
        bundle = train_on(cfg, train_bars[rel(fold.train_start) :], f"wf-fold{fold.k}")
        chosen = cfg
        sel: dict[str, Any] = {"model_id": bundle.model_id,
                               "train_oos_ic": bundle.metrics.get("ensemble", {}).get("ic")}
    else:  # the baseline has no weights: "retraining" = choosing its lookback on the training bars
        chosen, sel = select_baseline(cfg, train_bars, rel(fold.train_start), rel(fold.last_train_sample), horizon,
                                      purge, embargo)
    warm = bars[max(0, rel(fold.test_start) - warmup_bars(cfg)) : rel(fold.test_start)]
    live = bars[rel(fold.test_start) : rel(fold.test_end)]
    initial = cfg.broker.paper.initial_cash
    out: dict[str, Any] = {"fold": fold.k, **dataclasses.asdict(fold), "params": sel}
    test_fwd = fwd[rel(fold.test_start) : rel(fold.test_end)]
    baseline_cfg = with_model(cfg, kind="baseline")
    for name, run_cfg in (("strategy", chosen), ("baseline", baseline_cfg)):
        d = asyncio.run(drive(run_cfg, symbols, warm, live, collect_scores=True, bundle=bundle))
        s = _stats(d.equity, initial, cfg.feed.bar_seconds, d.engine.traded_value)
        ic = metrics.ic_summary(d.scores, test_fwd) if n_sym else {"ic": np.nan}
        trips, halts, _ = counts(d.engine.books[0])
        out[name] = {**{k: s[k] for k in ("total_return", "sharpe", "max_drawdown", "turnover", "sortino", "calmar")},
                     **ic, "trades": d.engine.fills, "breaker_trips": trips, "halts": halts,
                     "model_id": d.engine.model_id, "equity": d.equity.tolist(),
                     "returns": metrics.returns_of(d.equity, initial).tolist()}
    out["ic_by_model"] = {out["strategy"]["model_id"]: out["strategy"]["ic"],
                          "baseline:" + out["baseline"]["model_id"]: out["baseline"]["ic"]}
    if bundle is not None:  # each base model of the ensemble on the same test bars
        lo = max(0, rel(fold.test_start) - warmup_bars(cfg))
        rows = np.arange(rel(fold.test_start), rel(fold.test_end)) - lo
        per = base_model_ic(cfg, bundle, bars[lo : rel(fold.test_end)], rows, fwd[lo:])
        out["ic_by_model"].update({f"base:{k}": v for k, v in per.items()})
    first = close[rel(fold.test_start)]
    bh_curve = np.nanmean(close[rel(fold.test_start) : rel(fold.test_end)] / first, axis=1)
    out["buy_and_hold_return"] = float(bh_curve[-1] - 1.0)
    out["buy_and_hold_curve"] = bh_curve.tolist()
    return out


def _overall(folds: list[dict[str, Any]], name: str, initial: float, bar_seconds: int, n_trials: int = 1) -> dict[str, Any]:
    """Folds chained: each test window's returns in sequence, one compounding equity curve.

    DSR: ``n_trials`` configurations were chosen between (the baseline's lookback candidates);
    their Sharpe variance is taken as the estimator's null variance, 1 / n bars."""
    rets = np.concatenate([np.asarray(f[name]["returns"]) for f in folds]) if folds else np.empty(0)
    curve = initial * np.cumprod(1.0 + rets)
    s = metrics.summarize(curve, initial, bar_seconds)
    bars = np.array([len(f[name]["returns"]) for f in folds], dtype=float)
    w = bars / bars.sum() if bars.sum() else bars
    ics = np.array([f[name]["ic"] if f[name]["ic"] is not None else np.nan for f in folds], dtype=float)
    ok = np.isfinite(ics)
    per_year = metrics.bars_per_year(bar_seconds)
    return {**{k: s[k] for k in ("total_return", "sharpe", "max_drawdown", "sortino", "calmar")},
            "turnover": float(sum(f[name]["turnover"] for f in folds)),
            "ic": float(np.sum(ics[ok] * w[ok]) / np.sum(w[ok])) if ok.any() else None,
            **{k: v for k, v in metrics.sharpe_stats(rets, per_year, n_trials,
                                                     1.0 / max(len(rets), 1)).items() if k in ("psr", "dsr", "min_trl_bars")},
            "trades": int(sum(f[name]["trades"] for f in folds)),
            "breaker_trips": int(sum(f[name]["breaker_trips"] for f in folds)),
            "halts": int(sum(f[name]["halts"] for f in folds)), "curve": curve}


def run_walkforward(cfg: Config, spec: WfSpec, out: Path) -> dict[str, Any]:
    prepare_result_file(cfg, out, "walkforward")
    started = time.time_ns()
    t0 = time.perf_counter()
    bars = asyncio.run(_load(cfg, spec.data, spec.bars or 3000))
    n = len(bars)
    test = spec.test_window or max(50, n // 6)
    train = spec.train_window or max(cfg.feed.warmup_bars, 2 * test)
    # the ensemble's labels span model.horizon bars: purge at least that much
    horizon = cfg.model.horizon if is_ensemble(cfg) else spec.horizon
    purge = spec.purge if spec.purge is not None else max(horizon, 5)
    embargo = spec.embargo if spec.embargo is not None else 5
    if purge < 0 or embargo < 0:
        raise ConfigError("--purge" if purge < 0 else "--embargo", "must be >= 0")
    ts, _ = close_matrix(bars)
    folds = make_folds(ts, train, test, purge, horizon)
    if not folds:
        raise ConfigError("--train-window", f"{n} bars leave no fold with train {train} + purge {purge} + test {test}")
    pad = warmup_bars(cfg)
    tasks = []
    for f in folds:
        lo = max(0, min(f.train_start, f.test_start) - pad)
        hi = min(n, f.test_end + horizon)
        tasks.append((cfg, f, bars[lo:hi], lo, horizon, purge, embargo))
    results = run_tasks(run_fold, tasks, spec.workers, spec.ray_address, "walk-forward folds")
    initial = cfg.broker.paper.initial_cash
    from algobotd.validate.tune import LOOKBACKS

    n_trials = 1 if is_ensemble(cfg) else len({*LOOKBACKS, cfg.model.lookback})
    overall = _overall(results, "strategy", initial, cfg.feed.bar_seconds, n_trials)
    base = _overall(results, "baseline", initial, cfg.feed.bar_seconds)
    bh = float(np.prod([1.0 + r["buy_and_hold_return"] for r in results]) - 1.0)
    fold_rows = [{**{k: r["strategy"][k] for k in ("total_return", "sharpe", "max_drawdown", "turnover", "ic",
                                                   "rank_ic", "icir", "trades", "breaker_trips", "halts")},
                  "buy_and_hold_return": r["buy_and_hold_return"], "fold": r["fold"],
                  "train_start": r["train_start"], "train_end": r["train_end"], "test_start": r["test_start"],
                  "test_end": r["test_end"], "label_end_max_ns": r["label_end_max_ns"], "test_start_ns": r["test_start_ns"],
                  "params": r["params"], "ic_by_model": r["ic_by_model"],
                  "baseline": {k: r["baseline"][k] for k in ("total_return", "sharpe", "max_drawdown", "turnover", "ic")}}
                 for r in results]
    result = {
        "folds": fold_rows,
        "overall": {**{k: v for k, v in overall.items() if k != "curve"}, "buy_and_hold_return": bh,
                    "baseline": {k: v for k, v in base.items() if k != "curve"}},
        "bars": n, "symbols": len(bars[0].symbols), "train_window": train, "test_window": test, "purge": purge,
        "embargo": embargo, "horizon": horizon, "model": cfg.model.kind, "source": spec.data or "sim", "seconds": time.perf_counter() - t0,
        "out": str(out), "report": str(out.with_suffix(".html")),
    }
    result = clean(result)
    write_tables(out, "walkforward", cfg, result, started, time.time_ns(), _tables(results, fold_rows, overall))
    _report(out.with_suffix(".html"), results, result, overall["curve"], base["curve"])
    return result


def _tables(results: list[dict[str, Any]], rows: list[dict[str, Any]], overall: dict[str, Any]) -> dict[str, Any]:
    flat = {k: np.array([r[k] if r[k] is not None else np.nan for r in rows], dtype=float)
            for k in ("total_return", "sharpe", "max_drawdown", "turnover", "ic", "buy_and_hold_return")}
    flat.update({k: np.array([r[k] for r in rows], dtype=np.int64)
                 for k in ("fold", "train_start", "train_end", "test_start", "test_end", "label_end_max_ns", "test_start_ns")})
    flat["baseline_return"] = np.array([r["baseline"]["total_return"] for r in rows], dtype=float)
    eq = {"fold": np.concatenate([np.full(len(r["strategy"]["equity"]), r["fold"]) for r in results]),
          "bar": np.concatenate([np.arange(len(r["strategy"]["equity"])) for r in results]),
          "strategy_equity": np.concatenate([r["strategy"]["equity"] for r in results]),
          "baseline_equity": np.concatenate([r["baseline"]["equity"] for r in results])}
    return {"wf_folds": flat, "wf_equity": eq}


def _report(path: Path, results: list[dict[str, Any]], result: dict[str, Any], curve: np.ndarray,
            base_curve: np.ndarray) -> None:
    initial = float(curve[0] / (1.0 + results[0]["strategy"]["returns"][0])) if len(curve) else 1.0
    bh = np.concatenate([np.asarray(r["buy_and_hold_curve"]) * 1.0 for r in results])
    # chain buy-and-hold the same way the strategy is chained
    bh_chain, level = [], initial
    for r in results:
        c = np.asarray(r["buy_and_hold_curve"])
        bh_chain.append(level * c)
        level *= c[-1]
    bh = np.concatenate(bh_chain) if bh_chain else bh
    header, rows = fold_table(result)
    rets = np.concatenate([r["strategy"]["returns"] for r in results])
    sections = [
        ("Folds", report.html_table(header, rows)),
        ("Equity (test windows chained)", report.line_chart("equity", [("strategy", curve), ("baseline", base_curve),
                                                                       ("buy & hold", bh)], "{:,.0f}")),
        ("Drawdown", report.line_chart("drawdown", [("strategy", metrics.drawdown_curve(curve)),
                                                    ("baseline", metrics.drawdown_curve(base_curve))], "{:.1%}")),
        ("Return distribution", report.histogram("per-bar strategy returns", rets, 40, "{:.2%}")),
    ]
    intro = (f"<p>{result['bars']} bars x {result['symbols']} symbols ({result['source']}); train {result['train_window']}, "
             f"test {result['test_window']}, purge {result['purge']}, embargo {result['embargo']} bars. "
             "Every fold is a fresh engine run with commissions, spread and slippage.</p>")
    report.write_html(path, "algobotd walk-forward", intro, sections)


def fold_table(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["fold", "test bars", "params", "return", "sharpe", "max dd", "turnover", "IC", "baseline ret",
              "baseline IC", "B&H"]
    rows = [[str(f["fold"]), f"{f['test_start']}-{f['test_end']}",
             ",".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in f["params"].items()),
             pct(f["total_return"], 2), num(f["sharpe"]), pct(f["max_drawdown"], 2, sign=False), num(f["turnover"]),
             num(f["ic"], 3), pct(f["baseline"]["total_return"], 2), num(f["baseline"]["ic"], 3),
             pct(f["buy_and_hold_return"], 2)] for f in result["folds"]]
    o = result["overall"]
    rows.append(["overall", str(sum(f["test_end"] - f["test_start"] for f in result["folds"])), "",
                 pct(o["total_return"], 2), num(o["sharpe"]), pct(o["max_drawdown"], 2, sign=False), num(o["turnover"]),
                 num(o["ic"], 3), pct(o["baseline"]["total_return"], 2), num(o["baseline"]["ic"], 3),
                 pct(o["buy_and_hold_return"], 2)])
    return header, rows


def format_wf(result: dict[str, Any]) -> str:
    header, rows = fold_table(result)
    o = result["overall"]
    return (table(rows, header) + f"\nPSR(0) {num(o.get('psr'))}, DSR {num(o.get('dsr'))}, min track record {num(o.get('min_trl_bars'), 0)} bars; "
            f"{result['bars']} bars x {result['symbols']} symbols in {result['seconds']:.1f}s; "
            f"results: {result['out']}, report: {result['report']}")
