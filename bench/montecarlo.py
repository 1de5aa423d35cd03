"""Monte Carlo throughput: paths per second, 20 symbols x 252 daily bars, the full strategy
(engine + model + Kelly sizing + stops + breakers + paper fills), on 1 and 2 workers.

    .venv/bin/python bench/montecarlo.py             # 40 paths per worker count, then a profile
    .venv/bin/python bench/montecarlo.py --paths 200 --workers 1,2
    .venv/bin/python bench/montecarlo.py --quick     # a few paths, for the smoke test

Target (issue 9): 10,000 paths x 5 scenarios in 10 minutes on 2 cores = ~85 paths/s.
Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from algobotd.config import load  # noqa: E402
from algobotd.ops import logging as oplog  # noqa: E402
from algobotd.validate.montecarlo import McSpec, run_paths  # noqa: E402
from algobotd.validate.paths import path_config, run_chunk  # noqa: E402
from algobotd.validate.pool import run_tasks  # noqa: E402

TARGET = 85.0
# where a path's time goes: profile entries summed by the module they live in
BUCKETS = (
    ("scenario generation", ("validate/scenarios.py",)),
    ("model (baseline momentum)", ("models/",)),
    ("features", ("features/",)),
    ("risk: sizing", ("risk/sizing.py",)),
    ("risk: stops", ("risk/stops.py",)),
    ("risk: breakers / pre-trade / layer", ("risk/breakers.py", "risk/pretrade.py", "risk/layer.py", "risk/hooks.py",
                                            "risk/state.py")),
    ("paper broker", ("brokers/",)),
    ("portfolio", ("portfolio.py",)),
    ("engine loop + orders", ("engine.py",)),
    ("metrics", ("validate/metrics.py",)),
)


def profile(cfg, n: int) -> list[tuple[str, float]]:  # type: ignore[no-untyped-def]
    prof = cProfile.Profile()
    tasks = [(sc, i) for i in range(n) for sc in ("bull", "crash", "jump", "bootstrap", "sideways")][:n]
    prof.enable()
    run_chunk(path_config(cfg), tasks, 7, 20, 252, 0)
    prof.disable()
    st = pstats.Stats(prof)
    total = sum(v[2] for v in st.stats.values())  # tottime summed = profiled time
    out = []
    for name, keys in BUCKETS:
        t = sum(v[2] for k, v in st.stats.items() if any(x in k[0] for x in keys))
        out.append((name, t / total))
    numpy = sum(v[2] for k, v in st.stats.items() if "numpy" in k[0] or k[0] == "~")
    out.append(("numpy / builtins called from the above", numpy / total))
    out.append(("other (asyncio, dataclasses, domain records)", 1.0 - sum(x for _, x in out)))
    return out


def _noop() -> int:
    return 0


def pool_startup() -> float:
    """Wall time of a pool that does nothing: what every run pays before the first path."""
    t = time.perf_counter()
    run_tasks(_noop, [()], 1)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--paths", type=int, default=40, help="paths per measurement")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 4 if args.quick else args.paths
    oplog.setup("warning", "console", stream=sys.stderr)  # progress lines would drown the figures
    with tempfile.TemporaryDirectory() as d:
        cfg = load(None, [], os.path.join(d, "state"))
        print(f"Monte Carlo bench: 20 symbols x 252 daily bars (+{cfg.feed.warmup_bars} warm-up bars), "
              f"full strategy, model {cfg.model.kind}; {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f} (other work on the machine slows every figure)")
        # in-process, one path after another: the cost of a path without any pool overhead
        t = time.perf_counter()
        run_chunk(path_config(cfg), [("bull", i) for i in range(max(2, n // 4))], 1, 20, 252, 0)
        per_path = (time.perf_counter() - t) / max(2, n // 4)
        print(f"in-process: {per_path * 1000:.0f} ms per path = {1 / per_path:.1f} paths/s on one core "
              f"({per_path / (252 + cfg.feed.warmup_bars) * 1e6:.0f} us per bar)")
        spec = McSpec(scenarios=("bull", "bear", "sideways", "crash", "recovery"), n=max(1, n // 5), symbols=20,
                      bars=252, seed=1, keep_curves=0)
        startup = pool_startup()
        print(f"process pool start-up (spawn + imports): {startup:.2f}s per run")
        for w in [int(x) for x in args.workers.split(",")]:
            res, secs = run_paths(cfg, dataclasses.replace(spec, workers=w))
            rate = len(res) / secs
            steady = len(res) / max(secs - startup, 1e-9)
            print(f"{w} worker(s): {len(res)} paths in {secs:.2f}s = {rate:.1f} paths/s "
                  f"(~{steady:.1f} paths/s without the start-up); target {TARGET:.0f} paths/s is "
                  f"{TARGET / steady:.1f}x away; 10,000 x 5 would take {50_000 / steady / 60:.0f} min")
        if not args.quick:
            print("where the time goes (share of profiled time, in-process, 5 paths):")
            for name, share in profile(cfg, 5):
                print(f"  {name:<40} {share:6.1%}")


if __name__ == "__main__":
    main()
