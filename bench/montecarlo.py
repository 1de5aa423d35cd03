"""Monte Carlo throughput: paths per second, 20 symbols x 252 daily bars, the full strategy
(engine + model + Kelly sizing + stops + breakers + paper fills), on 1 and 2 workers.

    .venv/bin/python bench/montecarlo.py             # 500 paths per worker count, then a profile
    .venv/bin/python bench/montecarlo.py --paths 2000 --workers 1,2
    .venv/bin/python bench/montecarlo.py --quick     # a few paths, for the smoke test
    .venv/bin/python bench/montecarlo.py --model ensemble   # a default champion trained first; 10 paths

Target (issue 9): 10,000 paths x 5 scenarios in 10 minutes on 2 cores = ~85 paths/s.
The machine is shared, so every figure comes with references measured in the same run: the
same paths each on its own engine (``lockstep=False``, the code before lockstep; the results
are the same bit for bit, tests/validate/test_lockstep.py) and a fixed numpy workload shaped
like the engine's (small arrays, many calls). The pool figures extrapolate the 50,000-path run
from the measured start-up plus the steady rate.
Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from algobotd.config import Config, load  # noqa: E402
from algobotd.ops import logging as oplog  # noqa: E402
from algobotd.validate.montecarlo import McSpec, run_paths  # noqa: E402
from algobotd.validate.paths import LOCKSTEP_PATHS, path_config, run_chunk  # noqa: E402
from algobotd.validate.pool import run_tasks  # noqa: E402

TARGET = 85.0
SCENARIOS = ("bull", "bear", "sideways", "crash", "recovery")
# where a path's time goes: profile entries (own time) summed by the module they live in
BUCKETS = (
    ("scenario generation", ("validate/scenarios.py",)),
    ("model (score tape / baseline momentum / ensemble)", ("models/", "validate/tape.py")),
    ("torch / lightgbm / sklearn inside the models", ("torch", "lightgbm", "sklearn")),
    ("features", ("features/",)),
    ("risk: sizing", ("risk/sizing.py",)),
    ("risk: stops", ("risk/stops.py",)),
    ("risk: breakers / pre-trade / layer", ("risk/breakers.py", "risk/pretrade.py", "risk/layer.py", "risk/hooks.py",
                                            "risk/state.py")),
    ("paper broker", ("brokers/",)),
    ("portfolio", ("portfolio.py",)),
    ("engine loop + orders", ("engine.py",)),
    ("path store + driver", ("validate/paths.py",)),
    ("metrics", ("validate/metrics.py",)),
)
# phases of a path, by the cumulative time of these functions (file suffix, function name)
PHASES = (
    ("set-up: generate bars", (("validate/scenarios.py", "generate"), ("validate/scenarios.py", "stack"),
                               ("validate/scenarios.py", "batches"))),
    ("set-up: score tape", (("validate/tape.py", "tape_for"),)),
    ("set-up: engine + broker", (("algobotd/engine.py", "__init__"), ("brokers/__init__.py", "make_broker"))),
    ("warm-up bars (engine.warm)", (("algobotd/engine.py", "warm"),)),
    ("live bars (engine.process)", (("algobotd/engine.py", "process"),)),
    ("summary metrics", (("validate/metrics.py", "summarize"), ("validate/metrics.py", "hit_rate"))),
)


def tasks_for(n: int) -> list[tuple[str, int]]:
    return [(sc, i) for i in range(n) for sc in SCENARIOS][:n]


def profile(cfg: Config, n: int) -> tuple[list[tuple[str, float]], list[tuple[str, float]], float]:
    """(own-time share per module bucket, ms per path per phase, profiled ms per path)."""
    prof = cProfile.Profile()
    prof.enable()
    run_chunk(cfg, tasks_for(n), 7, 20, 252, 0)
    prof.disable()
    st = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in st.values())  # tottime summed = profiled time
    buckets = []
    for name, keys in BUCKETS:
        buckets.append((name, sum(v[2] for k, v in st.items() if any(x in k[0] for x in keys)) / total))
    numpy = sum(v[2] for k, v in st.items() if "numpy" in k[0] or k[0] == "~")
    buckets.append(("numpy / builtins called from the above", numpy / total))
    buckets.append(("other (asyncio, dataclasses, domain records)", 1.0 - sum(x for _, x in buckets)))
    phases = [(name, 1000 * sum(v[3] for k, v in st.items() if any(k[0].endswith(f) and k[2] == fn for f, fn in keys)) / n)
              for name, keys in PHASES]
    return buckets, phases, 1000 * total / n


def numpy_reference(seconds: float = 0.5) -> float:
    """Thousands of small-array numpy calls per second: the engine's kind of work, fixed forever."""
    a, b = np.random.default_rng(0).random((2, 20))
    calls, hits, t0 = 0, 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(200):
            c = np.where(a > 0.5, a * b, 0.0)
            hits += np.flatnonzero(c > 0.2).size + int(np.minimum(c, b).sum() > 1.0)
        calls += 200 * 5
    return calls / (time.perf_counter() - t0) / 1000


def compare_in_process(cfg: Config, n: int, rounds: int) -> tuple[list[float], list[float], list[float]]:
    """Paths/s on this core, no pool, on the same ``n`` paths: each path on its own engine (the
    reference: the code before lockstep, score tape included) and the paths in lockstep (one
    engine, one book per path, ``LOCKSTEP_PATHS`` per engine), alternating so both see the same
    machine; plus the numpy reference measured between them. Returns per-round (alone, lockstep,
    numpy k calls/s)."""
    tasks = tasks_for(n)
    alone, lock, ref = [], [], []
    for _ in range(rounds):
        refs = [numpy_reference(0.1)]
        t = time.perf_counter()
        run_chunk(cfg, tasks, 1, 20, 252, 0, lockstep=False)
        alone.append(n / (time.perf_counter() - t))
        refs.append(numpy_reference(0.1))
        t = time.perf_counter()
        run_chunk(cfg, tasks, 1, 20, 252, 0)
        lock.append(n / (time.perf_counter() - t))
        ref.append(statistics.median(refs))
    return alone, lock, ref


def train_champion(state_dir: str) -> str:
    """A champion with the default ``[model] models`` for ``--model ensemble`` (trained quickly
    on a small simulated panel, 2 epochs: the sizes that set inference cost are the defaults)."""
    import asyncio

    from algobotd.feeds.sim import SimFeed
    from algobotd.models.dataset import panel_from_batches
    from algobotd.models.registry import ModelRegistry
    from algobotd.models.train import spec_from, train

    cfg = load(None, ["feed.sim.symbols=40", "model.epochs=2", "model.folds=2"], state_dir)
    panel = panel_from_batches(asyncio.run(SimFeed(cfg.feed).history(400)), cfg.features)
    bundle = train(panel, spec_from(cfg.model), "bench-mc")
    reg = ModelRegistry.for_state(state_dir)
    reg.save(bundle)
    reg.promote(bundle.model_id)
    return ", ".join(bundle.names)


def _noop() -> int:
    return 0


def pool_startup() -> float:
    """Wall time of a pool that does nothing: what every run pays before the first path."""
    t = time.perf_counter()
    run_tasks(_noop, [()], 1)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--paths", type=int, default=500, help="paths per pool run")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model", default="baseline", help="model.kind of the paths (ensemble needs a champion)")
    args = ap.parse_args()
    ensemble = args.model == "ensemble"
    n = 6 if args.quick else (min(args.paths, 10) if ensemble else args.paths)
    oplog.setup("warning", "console", stream=sys.stderr)  # progress lines would drown the figures
    with tempfile.TemporaryDirectory() as d:
        # the figure is for the baseline model; config.toml may default to the ensemble,
        # whose paths need a trained champion (and cost its inference on top)
        base = load(None, [f'model.kind="{args.model}"'], os.path.join(d, "state"))
        cfg = path_config(base)
        if ensemble:
            t = time.perf_counter()
            names = train_champion(os.path.join(d, "state"))
            print(f"champion trained in {time.perf_counter() - t:.0f}s: {names} (no lockstep: the ensemble's "
                  "cross-sectional features and weights would see the other paths)")
        bars = 252 + base.feed.warmup_bars
        print(f"Monte Carlo bench: 20 symbols x 252 daily bars (+{base.feed.warmup_bars} warm-up bars), "
              f"full strategy, model {base.model.kind}; {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f} (other work on the machine slows every figure)")
        m = 6 if args.quick else LOCKSTEP_PATHS
        rounds = 1 if args.quick else 3
        run_chunk(cfg, [("bull", 0)], 1, 20, 252, 0)  # imports and caches out of the way
        if not ensemble:  # the ensemble never runs in lockstep: nothing to compare
            alone, lock, ref = compare_in_process(cfg, m, rounds)
            print(f"reference: fixed numpy workload {statistics.median(ref):.0f}k small-array calls/s "
                  f"(median of {rounds}, measured between the runs below)")
            for name, r in (("each path on its own engine", alone), (f"lockstep ({LOCKSTEP_PATHS} paths/engine)", lock)):
                med = statistics.median(r)
                print(f"in-process, {name:<32}: {med:5.1f} paths/s median, {max(r):5.1f} best of {rounds} "
                      f"({1000 / med:.1f} ms per path, {1e6 / med / bars:.0f} us per path-bar), {m} paths")
            ratios = [b / a for a, b in zip(alone, lock)]
            print(f"  lockstep / alone, same paths, same results: {statistics.median(ratios):.2f}x median, "
                  f"{max(ratios):.2f}x best of {rounds}")
        spec = McSpec(scenarios=SCENARIOS, n=max(1, n // 5), symbols=20, bars=252, seed=1, keep_curves=0)
        startup = pool_startup()
        print(f"process pool start-up (spawn + imports): {startup:.2f}s per run")
        for w in [int(x) for x in args.workers.split(",")]:
            res, secs = run_paths(base, dataclasses.replace(spec, workers=w))
            rate = len(res) / secs
            steady = len(res) / max(secs - startup, 1e-9)
            full = startup + 50_000 / steady
            verdict = "met" if full <= 600 else f"{full / 600:.1f}x away"
            print(f"{w} worker(s): {len(res)} paths in {secs:.2f}s = {rate:.1f} paths/s with the start-up "
                  f"(~{steady:.1f} paths/s without it); 10,000 x 5 paths would take ~{full / 60:.1f} min = "
                  f"{50_000 / full:.0f} paths/s (target {TARGET:.0f} paths/s in 10 min: {verdict})")
        if not args.quick:
            k = 2 if ensemble else LOCKSTEP_PATHS
            buckets, phases, per_path = profile(cfg, k)
            print(f"where a{'n ensemble' if ensemble else ' lockstep'} path's time goes (cProfile, in-process, {k} paths, {per_path:.1f} ms per "
                  "profiled path):")
            for name, ms in phases:
                print(f"  {name:<40} {ms:6.2f} ms")
            print("  own time by part:")
            for name, share in buckets:
                print(f"  {name:<40} {share:6.1%}")


if __name__ == "__main__":
    main()
