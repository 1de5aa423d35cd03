"""``algobotd tune``: random search over model hyperparameters, scored by out-of-sample IC under
purged, embargoed K-fold splits; the number of trials feeds the deflated Sharpe ratio.

What is tuned: with ``model.kind = "ensemble"`` its training / stacking keys (boosting rounds,
deep width, meta ridge, IC half-life, adaptive mix), each CV block scored by a bundle trained
on the bars before it (forward-only: the trainer needs contiguous history); otherwise the
momentum baseline's ``lookback`` / ``vol_window`` (no fitted weights, so its score on a block
does not depend on the training blocks; the splits decide which bars are scored).
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
from algobotd.validate.ensemble_bridge import ensemble_scores, is_ensemble, train_on, warmup_bars
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


def sample_params(rng: np.random.Generator, n: int, kind: str = "baseline") -> list[dict[str, Any]]:
    """Distinct random draws. Baseline: log-uniform lookback 3..120 and vol window 10..240 bars.
    Ensemble: boosting rounds 20..400 (log), deep width 8..64, meta ridge 1..100 (log), IC
    half-life 5..60 bars, adaptive mix 0..1."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    logu = lambda lo, hi: math.exp(rng.uniform(math.log(lo), math.log(hi)))  # noqa: E731
    while len(out) < n and len(seen) < 5000:
        if kind == "ensemble":
            p: dict[str, Any] = {"gbm_rounds": int(round(logu(20, 400))), "hidden": int(rng.choice([8, 16, 32, 64])),
                                 "meta_alpha": round(logu(1, 100), 3), "ic_halflife": round(float(rng.uniform(5, 60)), 1),
                                 "adaptive_mix": round(float(rng.uniform(0, 1)), 2)}
        else:
            p = {"lookback": int(round(logu(3, 120))), "vol_window": int(round(logu(10, 240)))}
        key = tuple(p.values())
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _scores(cfg: Config, params: dict[str, Any], bars: list[BarBatch], folds: list[tuple[np.ndarray, np.ndarray]],
            purge: int) -> np.ndarray:
    """Out-of-sample scores on every CV test block (NaN elsewhere).

    Baseline: no weights to fit, one causal pass. Ensemble: for each block a bundle trained on
    the bars before it (up to ``purge`` bars short of it: every training label ends before the
    block), then the live EnsembleModel scores the block; the first block has no past and stays NaN.
    """
    n_sym = len(bars[0].symbols)
    if not is_ensemble(cfg):
        return model_scores(with_model(cfg, kind="baseline", **params).model, bars, n_sym)
    trial_cfg = with_model(cfg, **params)
    out = np.full((len(bars), n_sym), np.nan)
    warm = warmup_bars(trial_cfg)
    for k, (_train, test) in enumerate(folds):
        a, b = int(test[0]), int(test[-1]) + 1
        if a - purge < trial_cfg.model.min_train_bars // 2:
            continue
        bundle = train_on(trial_cfg, bars[: a - purge], f"tune-{k}")
        lo = max(0, a - warm)
        out[a:b] = ensemble_scores(trial_cfg, bundle, bars[lo:b])[a - lo :]
    return out


def evaluate(cfg: Config, params: dict[str, Any], bars: list[BarBatch], folds: list[tuple[np.ndarray, np.ndarray]],
             horizon: int, purge: int = 0) -> dict[str, Any]:
    """One trial: OOS IC per purged test block and the signal's long-short returns on those blocks."""
    scores = _scores(cfg, params, bars, folds, purge)
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
    horizon = cfg.model.horizon if is_ensemble(cfg) else spec.horizon
    purge = spec.purge if spec.purge is not None else max(horizon, 5)
    embargo = spec.embargo if spec.embargo is not None else 5
    if spec.folds < 2 or len(bars) < spec.folds * (purge + embargo + 20):
        raise ConfigError("--folds", f"{len(bars)} bars are too few for {spec.folds} purged folds")
    folds = purged_kfold(len(bars), spec.folds, horizon, purge, embargo)
    trials = sample_params(np.random.default_rng(spec.seed), spec.trials, "ensemble" if is_ensemble(cfg) else "baseline")
    res = run_tasks(evaluate, [(cfg, p, bars, folds, horizon, purge) for p in trials], spec.workers, spec.ray_address,
                    "tune trials")
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
        "trials": len(res), "folds": spec.folds, "purge": purge, "embargo": embargo, "model": cfg.model.kind,
        "search": "random (local pool)" if spec.ray_address is None else "random (Ray tasks)",
        "bars": len(bars), "symbols": len(bars[0].symbols), "seconds": time.perf_counter() - t0,
        "all": [{"params": r["params"], "ic": r["ic"], "sharpe": r["sr"] * math.sqrt(per_year)} for r in res],
        "out": str(out), "report": str(out.with_suffix(".html")),
    }
    result = clean(result)
    cols: dict[str, Any] = {"trial": np.arange(len(res))}
    cols.update({k: np.array([r["params"][k] for r in res]) for k in res[0]["params"]})
    cols.update({"ic": np.array([r["ic"] for r in res], dtype=float), "sharpe": srs * math.sqrt(per_year)})
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
