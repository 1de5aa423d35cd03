"""Ensemble prediction latency per batch of 500 symbols on CPU: p50 / p99 and each model's share.

    .venv/bin/python bench/inference.py            # 500 symbols, 300 timed batches
    .venv/bin/python bench/inference.py --quick    # 100 symbols, 50 timed batches

A bundle with every available base model is trained quickly on a small simulated panel
(default ``[model]`` sizes except 2 epochs: the network sizes, tree counts and depths that set
inference cost are the defaults). Then ``EnsembleModel.update`` runs on 500-symbol batches
of the simulated market; after the feature warm-up each call is timed. "ensemble" is the
whole update minus the feature engine (base models + stacking + confidence + IC update).
Each model's share comes from timing its batched predict on the same inputs. Figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pct(xs: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.array(xs) * 1e3, q))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--batches", type=int, default=300)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.symbols, a.batches = 100, 50
    import numpy as np
    import torch

    from algobotd.config import load
    from algobotd.feeds.sim import SimFeed
    from algobotd.models.dataset import panel_from_batches
    from algobotd.models.ensemble import EnsembleModel
    from algobotd.models.deep import SequenceLearner
    from algobotd.models.train import spec_from, train

    torch.set_num_threads(1)  # the daemon's setting: inference shares the event loop's core
    train_cfg = load(None, ["feed.sim.symbols=40", "model.epochs=2", "model.folds=2"], "/tmp/algobot-bench-inf")
    t0 = time.perf_counter()
    panel = panel_from_batches(asyncio.run(SimFeed(train_cfg.feed).history(400)), train_cfg.features)
    bundle = train(panel, spec_from(train_cfg.model), "bench")
    print(f"trained {', '.join(bundle.names)} in {time.perf_counter() - t0:.1f}s "
          f"(unavailable: {', '.join(bundle.unavailable) or 'none'})")
    cfg = load(None, [f"feed.sim.symbols={a.symbols}", "model.kind=\"ensemble\""], "/tmp/algobot-bench-inf")
    model = EnsembleModel(cfg, a.symbols, bundle=bundle)
    warm = model.fe.warmup + 5
    batches = asyncio.run(SimFeed(cfg.feed).history(warm + a.batches))
    for b in batches[:warm]:
        model.update(b)
    total, feats = [], []
    shares = {m: [] for m in bundle.names}
    for b in batches[warm:]:
        t1 = time.perf_counter()
        pred = model.update(b)
        total.append(time.perf_counter() - t1)
        # the feature engine alone on a fresh copy would double-update; time it via a twin engine instead
        X = model.fe.rows(b)
        win = model.fe.sequence.window()
        for m in bundle.names:
            lr = bundle.learners[m]
            t2 = time.perf_counter()
            lr.predict(win) if isinstance(lr, SequenceLearner) else lr.predict(X)
            shares[m].append(time.perf_counter() - t2)
    assert pred.ready.all()
    twin = EnsembleModel(cfg, a.symbols, bundle=None).fe  # a feature engine alone, same batches
    for b in batches[:warm]:
        twin.update(b)
    for b in batches[warm:]:
        t1 = time.perf_counter()
        twin.update(b)
        feats.append(time.perf_counter() - t1)
    ens = [t - f for t, f in zip(total, feats)]
    print(f"{a.symbols} symbols, {len(total)} timed batches, {len(bundle.feature_names)} features, CPU, 1 thread")
    print(f"{'part':<14}{'p50 ms':>10}{'p99 ms':>10}{'share':>8}")
    base = float(np.median(ens))
    rows = [("update total", total), ("features", feats), ("ensemble", ens)] + list(shares.items())
    for name, xs in rows:
        share = f"{np.median(xs) / base:>7.0%}" if name in shares else ""
        print(f"{name:<14}{pct(xs, 50):>10.2f}{pct(xs, 99):>10.2f}{share:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
