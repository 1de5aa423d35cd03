"""``algobotd tune``: random search over model hyperparameters, scored by out-of-sample IC under
purged, embargoed K-fold splits; the number of trials feeds the deflated Sharpe ratio.

What is tuned today: the momentum baseline's ``lookback`` and ``vol_window`` (the ensemble was
not in the tree when this was written). The baseline has no fitted weights, so its score on a
CV test block does not depend on the training blocks; the splits still decide which bars are
scored, and a fitted model plugs in by training on ``train`` indices in :func:`evaluate`.
Trials are independent tasks on the local process pool, or Ray tasks with ``--ray``.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from algobotd.config import Config, ConfigError
from algobotd.domain import BarBatch
from algobotd.validate import metrics, report
from algobotd.validate.pool import run_tasks
from algobotd.validate.results import clean, num, prepare_result_file, table, write_tables
from algobotd.validate.signals import close_matrix, forward_returns, long_short_returns, model_scores, purged_kfold, with_model

LOOKBACKS = (5, 10, 20, 30, 60, 90)


@dataclass(frozen=True)
class TuneSpec:
    data: str | None = None
    bars: int | None = None
    trials: int = 24
    folds: int = 5
    purge: int | None = None
    embargo: int | None = None
    workers: int = 1
    ray_address: str | None = None
    horizon: int = 1
    seed: int = 0


def ic_on(scores: np.ndarray, fwd: np.ndarray, rows: np.ndarray) -> float:
    s = metrics.ic_summary(scores[rows], fwd[rows])["ic"]
    return float(s) if s is not None and math.isfinite(s) else float("nan")


def select_baseline(cfg: Config, bars: list[BarBatch], sample_lo: int, sample_hi: int, horizon: int,
                    purge: int, embargo: int, k: int = 3) -> tuple[Config, dict[str, Any]]:
    """Walk-forward 'retrain' of the baseline: the lookback with the best mean IC over purged,
    embargoed CV blocks of samples [sample_lo, sample_hi] (inclusive) of ``bars``; every label
    lies inside ``bars``, which end before the test window."""
    _, close = close_matrix(bars)
    fwd = forward_returns(close, horizon)
    rows = np.arange(sample_lo, sample_hi + 1)
    assert rows[-1] + horizon < len(bars), "a training label would need a bar beyond the training data"
    blocks = [rows[test] for _train, test in purged_kfold(len(rows), k, horizon, purge, embargo)]
    best: tuple[float, int] = (-math.inf, cfg.model.lookback)
    for lb in sorted({*LOOKBACKS, cfg.model.lookback}):
        if lb + 1 >= len(rows):
            continue
        scores = model_scores(with_model(cfg, kind="baseline", lookback=lb).model, bars, len(bars[0].symbols))
        block_ic = [x for x in (ic_on(scores, fwd, b) for b in blocks) if math.isfinite(x)]
        ic = float(np.mean(block_ic)) if block_ic else float("nan")
        if math.isfinite(ic) and ic > best[0]:
            best = (ic, lb)
    return with_model(cfg, lookback=best[1]), {"lookback": best[1], "train_ic": None if best[0] == -math.inf else best[0]}


def sample_params(rng: np.random.Generator, n: int) -> list[dict[str, int]]:
    """Log-uniform lookback 3..120 and vol window 10..240 bars (distinct draws)."""
    out: list[dict[str, int]] = []
    seen: set[tuple[int, int]] = set()
    while len(out) < n and len(seen) < 5000:
        lb = int(round(math.exp(rng.uniform(math.log(3), math.log(120)))))
        vw = int(round(math.exp(rng.uniform(math.log(10), math.log(240)))))
        if (lb, vw) not in seen:
            seen.add((lb, vw))
            out.append({"lookback": lb, "vol_window": vw})
    return out


def evaluate(cfg: Config, params: dict[str, int], bars: list[BarBatch], folds: list[tuple[np.ndarray, np.ndarray]],
             horizon: int) -> dict[str, Any]:
    """One trial: OOS IC per purged test block and the signal's long-short returns on those blocks."""
    scores = model_scores(with_model(cfg, kind="baseline", **params).model, bars, len(bars[0].symbols))
    _, close = close_matrix(bars)
    fwd = forward_returns(close, horizon)
    ics = [ic_on(scores, fwd, test) for _train, test in folds]
    test_rows = np.concatenate([test for _train, test in folds])
    ls = long_short_returns(scores[test_rows], fwd[test_rows])
    ls = ls[np.isfinite(ls)]
    ok = [x for x in ics if math.isfinite(x)]
    return {"params": params, "fold_ic": ics, "ic": float(np.mean(ok)) if ok else float("nan"),
            "ic_std": float(np.std(ok, ddof=1)) if len(ok) > 1 else float("nan"),
            "sr": metrics.sharpe(ls), "returns": ls}


def run_tune(cfg: Config, spec: TuneSpec, out: Path) -> dict[str, Any]:
    from algobotd.validate.walkforward import _load

    prepare_result_file(cfg, out, "tune")
    started, t0 = time.time_ns(), time.perf_counter()
    bars = asyncio.run(_load(cfg, spec.data, spec.bars or 3000))
    purge = spec.purge if spec.purge is not None else max(spec.horizon, 5)
    embargo = spec.embargo if spec.embargo is not None else 5
    if spec.folds < 2 or len(bars) < spec.folds * (purge + embargo + 20):
        raise ConfigError("--folds", f"{len(bars)} bars are too few for {spec.folds} purged folds")
    folds = purged_kfold(len(bars), spec.folds, spec.horizon, purge, embargo)
    trials = sample_params(np.random.default_rng(spec.seed), spec.trials)
    res = run_tasks(evaluate, [(cfg, p, bars, folds, spec.horizon) for p in trials], spec.workers, spec.ray_address)
    finite = [r for r in res if math.isfinite(r["ic"])]
    if not finite:
        raise ConfigError("--bars", "no trial produced a finite IC (too few bars or symbols?)")
    best = max(finite, key=lambda r: r["ic"])
    srs = np.array([r["sr"] for r in res], dtype=float)
    per_year = metrics.bars_per_year(cfg.feed.bar_seconds)
    # DSR: the best trial's Sharpe against the expected max of len(res) unskilled tries
    st = metrics.sharpe_stats(best["returns"], per_year, n_trials=len(res), var_trials=float(np.var(srs, ddof=1)))
    result = {
        "best": {"params": best["params"], "ic": best["ic"], "ic_std": best["ic_std"], "fold_ic": best["fold_ic"],
                 "sharpe": st["sharpe"], "psr": st["psr"], "dsr": st["dsr"], "min_trl_bars": st["min_trl_bars"]},
        "trials": len(res), "folds": spec.folds, "purge": purge, "embargo": embargo, "model": "baseline",
        "search": "random (local pool)" if spec.ray_address is None else "random (Ray tasks)",
        "bars": len(bars), "symbols": len(bars[0].symbols), "seconds": time.perf_counter() - t0,
        "all": [{"params": r["params"], "ic": r["ic"], "sharpe": r["sr"] * math.sqrt(per_year)} for r in res],
        "out": str(out), "report": str(out.with_suffix(".html")),
    }
    result = clean(result)
    cols = {"trial": np.arange(len(res)), "lookback": np.array([r["params"]["lookback"] for r in res]),
            "vol_window": np.array([r["params"]["vol_window"] for r in res]),
            "ic": np.array([r["ic"] for r in res], dtype=float), "sharpe": srs * math.sqrt(per_year)}
    write_tables(out, "tune", cfg, result, started, time.time_ns(), {"tune_trials": cols})
    curve = np.cumprod(1.0 + best["returns"])
    report.write_html(out.with_suffix(".html"), "algobotd tune", f"<p>{format_tune(result)}</p>".replace("\n", "<br>"), [
        ("Trials", report.histogram("OOS IC of all trials", cols["ic"], 20, "{:.3f}")),
        ("Best trial", report.line_chart("long-short signal growth on the OOS blocks (before costs)", [("best", curve)])),
    ])
    return result


def format_tune(result: dict[str, Any]) -> str:
    b = result["best"]
    rows = [[",".join(f"{k}={v}" for k, v in t["params"].items()), num(t["ic"], 4), num(t["sharpe"])]
            for t in sorted(result["all"], key=lambda t: -(t["ic"] if t["ic"] is not None else -9))[:5]]
    return (table(rows, ["params (top 5 by OOS IC)", "IC", "L/S sharpe"])
            + f"\nbest {b['params']}: OOS IC {num(b['ic'], 4)} (+/- {num(b['ic_std'], 4)} over {result['folds']} purged folds), "
            f"PSR {num(b['psr'])}, DSR {num(b['dsr'])} over {result['trials']} trials; {result['search']}, "
            f"{result['bars']} bars x {result['symbols']} symbols in {result['seconds']:.1f}s")
