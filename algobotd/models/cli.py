"""``algobotd train``: history -> features -> purged walk-forward training -> registry + models row.

Runs in its own process (the CLI), never on a daemon's event loop. Data: ``--data PATH``
(stored bars: DuckDB/CSV/Parquet), ``--data arch`` (the real daily data set shipped by the
``arch`` package), or the simulated market (``--symbols K --bars N --seed S``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from algobotd.config import Config, ConfigError
from algobotd.domain import BarBatch

KEYS = ("ic", "rank_ic", "icir", "hit_rate", "mse")


def add_parser(sub: argparse._SubParsersAction, common: Any) -> None:  # type: ignore[type-arg]
    tr = sub.add_parser("train", help="train the ensemble (purged walk-forward OOS metrics) and register it")
    common(tr, sim=True)
    tr.add_argument("--data", metavar="PATH", help="bars (DuckDB, CSV, Parquet) or 'arch' for the real data set; "
                                                   "default: the simulated market")
    tr.add_argument("--bars", type=int, metavar="N", help="simulated bars (default 2000)")
    tr.add_argument("--start", metavar="YYYY-MM-DD")
    tr.add_argument("--end", metavar="YYYY-MM-DD", help="inclusive")
    tr.add_argument("--models", metavar="LIST", help="comma-separated base models (default: model.models)")
    tr.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="torch device (default: model.device)")
    tr.add_argument("--no-promote", action="store_true", help="register without making it the champion")
    tr.add_argument("--json", action="store_true", help="print one JSON object")


def _ns(day: str | None, plus_days: int = 0) -> int | None:
    if not day:
        return None
    d = dt.datetime.combine(dt.date.fromisoformat(day) + dt.timedelta(days=plus_days), dt.time(), dt.UTC)
    return int(d.timestamp()) * 10**9


def load_history(cfg: Config, data: str | None, bars: int | None, start: str | None, end: str | None) -> list[BarBatch]:
    if data == "arch":
        from algobotd.models.realdata import arch_batches

        return arch_batches(start, end)
    if data:
        from algobotd.feeds.replay import ReplayFeed

        if not Path(data).exists():
            raise ConfigError("--data", f"no such file: {data}")
        feed = ReplayFeed(cfg.feed, data)
        batches = asyncio.run(feed.history(len(feed)))
    else:
        from algobotd.feeds.sim import SimFeed

        batches = asyncio.run(SimFeed(cfg.feed).history(bars or 2000))
    lo, hi = _ns(start), _ns(end, 1)
    return [b for b in batches if (lo is None or b.ts >= lo) and (hi is None or b.ts < hi)]


def run_train(cfg: Config, args: argparse.Namespace) -> int:
    import torch

    from algobotd.models.dataset import panel_from_batches
    from algobotd.models.registry import ModelRegistry, new_model_id
    from algobotd.models.train import spec_from, train

    if args.bars is not None and args.bars <= 0:
        raise ConfigError("--bars", f"must be > 0, got {args.bars}")
    try:
        spec = spec_from(cfg.model, args.models, args.device)
    except ValueError as exc:
        raise ConfigError("--models", str(exc)) from None
    torch.set_num_threads(cfg.model.threads)
    t0 = time.perf_counter()
    batches = load_history(cfg, args.data, args.bars, args.start, args.end)
    panel = panel_from_batches(batches, cfg.features)
    t1 = time.perf_counter()
    try:
        bundle = train(panel, spec, new_model_id())
    except ValueError as exc:
        raise ConfigError("--bars" if not args.data else "--data", str(exc)) from None
    reg = ModelRegistry.for_state(cfg.state.dir)
    path = reg.save(bundle)
    if not args.no_promote:
        reg.promote(bundle.model_id)
    recorded = reg.record(Path(cfg.state.dir) / "algobot.duckdb", bundle, champion=not args.no_promote)
    m = bundle.metrics
    out = {"model_id": bundle.model_id,
           "models": {k: {x: v[x] for x in KEYS} for k, v in m["models"].items()},
           "ensemble": {x: m["ensemble"][x] for x in KEYS}, "baseline": {x: m["baseline"][x] for x in KEYS},
           "unavailable": bundle.unavailable, "ensemble_beats_best_model": m["ensemble_beats_best_model"],
           "samples": m["ensemble"]["n"], "periods": m["ensemble"]["periods"], "bars": panel.shape[0],
           "symbols": panel.shape[1], "features": panel.shape[2], "folds": m["folds"], "horizon": m["horizon"],
           "path": str(path), "champion": not args.no_promote, "models_row": recorded,
           "feature_seconds": round(t1 - t0, 2), "train_seconds": round(time.perf_counter() - t1, 2)}
    if args.json:
        print(json.dumps(out, default=_num))
    else:
        print(format_report(out))
    return 0


def _num(v: Any) -> Any:
    return None if isinstance(v, float) and not np.isfinite(v) else float(v)


def format_report(r: dict[str, Any]) -> str:
    lines = [f"model {r['model_id']}: {r['bars']} bars x {r['symbols']} symbols x {r['features']} features, "
             f"{r['folds']} purged folds, horizon {r['horizon']}, {r['train_seconds']}s",
             f"{'out-of-sample':<14}" + "".join(f"{k:>10}" for k in KEYS)]
    rows = [*r["models"].items(), ("ENSEMBLE", r["ensemble"]), ("baseline", r["baseline"])]
    for name, v in rows:
        lines.append(f"{name:<14}" + "".join(f"{v[k]:>10.4f}" for k in KEYS))
    for name, why in r["unavailable"].items():
        lines.append(f"{name:<14}  unavailable: {why}")
    lines.append(f"ensemble beats the best single model (IC): {r['ensemble_beats_best_model']}")
    lines.append(f"saved to {r['path']}" + (" (champion)" if r["champion"] else ""))
    if not r["models_row"]:
        lines.append("models row not written: the store is held by a running daemon")
    return "\n".join(lines)
