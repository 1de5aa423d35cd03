"""Ensemble prediction latency per batch of 500 symbols on CPU: p50 / p99 and each model's share.

    .venv/bin/python bench/inference.py            # 500 symbols, 300 timed batches
    .venv/bin/python bench/inference.py --quick    # 100 symbols, 50 timed batches

A bundle with the default ``[model] models`` is trained quickly on a small simulated panel
(default sizes except 2 epochs: the network sizes, tree counts and depths that set inference
cost are the defaults). Then ``EnsembleModel.update`` runs on 500-symbol batches of the
simulated market; after the feature warm-up each call is timed. "ensemble" is the whole
update minus the feature engine (base models + stacking + confidence + IC update). The
features' and each model's time are measured inside that update (``EnsembleModel.timings``);
a model's share is of the "ensemble" time. The
transformer (one layer) is served one step per batch, last token only; as references, its
windowed last-token path (``TransformerNet.last``, what ``model.stateful=false`` serves) and its
full encoder pass are timed on the same windows (trained alone if it is not in ``models``).
For the stateful models the bench also prints how closely their output follows the windowed
forward pass.

    .venv/bin/python bench/inference.py --set model.stateful=false   # every model windowed
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
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
    ap.add_argument("--full-trees", action="store_true",
                    help="no early stopping: every tree model grows model.gbm_rounds trees (worst-case latency)")
    ap.add_argument("--set", action="append", default=[], help="config override for the served model, e.g. model.rewarm_bars=20")
    a = ap.parse_args()
    if a.quick:
        a.symbols, a.batches = 100, 50
    import numpy as np
    import torch

    from algobotd.config import load
    from algobotd.feeds.sim import SimFeed
    from algobotd.models.dataset import panel_from_batches
    from algobotd.models.ensemble import EnsembleModel
    from algobotd.models.train import spec_from, train, with_models

    torch.set_num_threads(1)  # the daemon's setting: inference shares the event loop's core
    train_cfg = load(None, ["feed.sim.symbols=40", "model.epochs=2", "model.folds=2"], "/tmp/algobot-bench-inf")
    t0 = time.perf_counter()
    panel = panel_from_batches(asyncio.run(SimFeed(train_cfg.feed).history(400)), train_cfg.features)
    spec = spec_from(train_cfg.model)
    if a.full_trees:  # on the signal-free simulated market early stopping keeps very few trees
        spec = dataclasses.replace(spec, tree=dataclasses.replace(spec.tree, early_stop=False))
    bundle = train(panel, spec, "bench")
    # the transformer's full encoder pass vs its served last-token path, on the same windows
    extra = bundle.learners.get("transformer") or train(
        panel, with_models(spec, ("transformer",)), "bench-transformer").learners["transformer"]
    alone = "" if "transformer" in bundle.names else " (+ transformer alone, for reference)"
    print(f"trained {', '.join(bundle.names)}{alone} in {time.perf_counter() - t0:.1f}s "
          f"(unavailable: {', '.join(bundle.unavailable) or 'none'})")
    # tree models cost ~ trees x symbols: early stopping sets the count, so it is printed with the times
    print("trees: " + ", ".join(f"{m} {lr.n_trees}" for m, lr in bundle.learners.items() if hasattr(lr, "n_trees")))
    cfg = load(None, [f"feed.sim.symbols={a.symbols}", "model.kind=\"ensemble\"", *a.set], "/tmp/algobot-bench-inf")
    model = EnsembleModel(cfg, a.symbols, bundle=bundle)
    warm = model.fe.warmup + 5
    batches = asyncio.run(SimFeed(cfg.feed).history(warm + a.batches))
    for b in batches[:warm]:
        model.update(b)
    total, feats, trans, trans_full, cpu_total, cpu_feats = [], [], [], [], [], []
    fe_update = model.fe.update

    def fe_timed(batch: object) -> object:  # CPU time too: on a shared machine wall time includes waits
        c = time.thread_time()
        out = fe_update(batch)  # type: ignore[arg-type]
        cpu_feats.append(time.thread_time() - c)
        return out

    model.fe.update = fe_timed  # type: ignore[method-assign]
    shares: dict[str, list[float]] = {m: [] for m in bundle.names}
    agree: dict[str, list[float]] = {m: [] for m in model.streams}
    for b in batches[warm:]:
        t1, c1 = time.perf_counter(), time.thread_time()
        pred = model.update(b)
        total.append(time.perf_counter() - t1)
        cpu_total.append(time.thread_time() - c1)
        feats.append(model.timings["features"])
        for m in bundle.names:
            shares[m].append(model.timings[m])
        win = model.fe.sequence.window()
        t2 = time.perf_counter()
        extra.predict(win)  # windowed: scaling + last token
        trans.append(time.perf_counter() - t2)
        x = extra._scale(win[:, -extra.p.seq_len:])
        t2 = time.perf_counter()
        with torch.inference_mode():
            extra.net(x)  # type: ignore[misc]
        trans_full.append(time.perf_counter() - t2)
        for m, st in model.streams.items():  # stateful vs the windowed forward pass on the same rows
            agree[m].append(float(np.corrcoef(st.learner.predict(win), st.last)[0, 1]))
    assert pred.ready.all()
    ens = [t - f for t, f in zip(total, feats)]
    mode = "stateful" if model.streams else "windowed"
    print(f"{a.symbols} symbols, {len(total)} timed batches, {len(bundle.feature_names)} features, CPU, 1 thread, "
          f"sequence models {mode} (rewarm_bars={cfg.model.rewarm_bars})")
    print(f"{'part':<22}{'p50 ms':>10}{'p99 ms':>10}{'share':>8}")
    base = float(np.median(ens))
    rows = [("update total", total), ("features", feats), ("ensemble", ens)] + list(shares.items())
    for name, xs in rows:
        share = f"{np.median(xs) / base:>7.0%}" if name in shares else ""
        print(f"{name:<22}{pct(xs, 50):>10.2f}{pct(xs, 99):>10.2f}{share:>8}")
    cpu_ens = [t - f for t, f in zip(cpu_total, cpu_feats[-len(cpu_total):])]
    print(f"{'ensemble, CPU time':<22}{pct(cpu_ens, 50):>10.2f}{pct(cpu_ens, 99):>10.2f}   (this thread's CPU: no waits for the core)")
    print(f"{'transformer windowed':<22}{pct(trans, 50):>10.2f}{pct(trans, 99):>10.2f}   "
          f"(last-token path over the window, scaling included; {'in' if 'transformer' in bundle.names else 'not in'} models)")
    print(f"{'transformer full pass':<22}{pct(trans_full, 50):>10.2f}{pct(trans_full, 99):>10.2f}   "
          f"(encoder over every token, scaling excluded; {len(extra.net.enc.layers)} layer)")  # type: ignore[union-attr]
    for m, c in agree.items():
        print(f"{m}: stateful vs windowed prediction, cross-sectional correlation median {np.median(c):.4f} "
              f"min {np.min(c):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
