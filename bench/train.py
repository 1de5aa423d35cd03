"""Training time per base model on a daily panel: 500 symbols x 2 years (504 bars) by default.

    .venv/bin/python bench/train.py              # 500 x 504 daily bars of the simulated market, CPU
    .venv/bin/python bench/train.py --quick      # 50 x 300, seconds
    .venv/bin/python bench/train.py --device cpu   # force CPU on a GPU machine

Features come from the live FeatureEngine over the simulated market with one bar per session
(``feed.bar_seconds = 23400``). Each model is fitted once on every labelled sample (horizon 5,
last 20% of the time span as the purged early-stopping validation), with the default
``[model]`` settings; the wall time of that one fit is printed. Figures only, nothing checked.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--bars", type=int, default=504)
    ap.add_argument("--models", default="lightgbm,random_forest,hist_gbm,xgboost,catboost,lstm,transformer,cnn,attention")
    ap.add_argument("--device", default="auto", help="auto: CUDA, then MPS, then CPU (deep models)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.symbols, a.bars = 50, 300
    import numpy as np
    import torch

    from algobotd.config import load
    from algobotd.feeds.sim import SimFeed
    from algobotd.models.dataset import panel_from_batches
    from algobotd.models.deep import pick_device
    from algobotd.models.gbm import unavailable_reason
    from algobotd.models.train import fit_learner, make_learner, spec_from
    from algobotd.labels import make_labels

    cfg = load(None, [f"feed.sim.symbols={a.symbols}", "feed.bar_seconds=23400", f"model.threads={a.threads}",
                      f"model.device=\"{a.device}\""] + (["model.epochs=2", "model.gbm_rounds=50"] if a.quick else []),
               "/tmp/algobot-bench-train")
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    batches = asyncio.run(SimFeed(cfg.feed).history(a.bars))
    panel = panel_from_batches(batches, cfg.features)
    feat_s = time.perf_counter() - t0
    spec = spec_from(cfg.model, a.models)
    lab = make_labels(panel.close, spec.label, spec.horizon, spec.vol_span)
    y = np.where(panel.ready, lab.y, np.nan)
    times = np.arange(panel.shape[0])
    n = int(np.isfinite(y).sum())
    print(f"{panel.shape[1]} symbols x {panel.shape[0]} bars x {panel.shape[2]} features = {n:,} labelled samples; "
          f"features {feat_s:.1f}s; device {pick_device(a.device)}; threads {a.threads}")
    print(f"{'model':<14}{'fit s':>10}{'samples/s':>12}")
    for m in spec.models:
        why = unavailable_reason(m)
        if why:
            print(f"{m:<14}{'-':>10}{'-':>12}  unavailable: {why}")
            continue
        lr = make_learner(m, spec)
        t1 = time.perf_counter()
        fit_learner(lr, panel, y, lab.end, times, spec)
        s = time.perf_counter() - t1
        print(f"{m:<14}{s:>10.2f}{n / s:>12,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
