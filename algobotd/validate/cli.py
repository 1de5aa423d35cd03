"""CLI of the validation commands: ``algobotd mc | walkforward | tune``.

Kept out of ``__main__`` (which only registers the parsers and dispatches here) so the shared
entry point stays small. Heavy work runs in worker processes (or on Ray), never in this one's
event loop; logs go to stderr so ``--json`` output on stdout stays one clean object.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from algobotd.config import Config, ConfigError

VALIDATE_COMMANDS = ("mc", "walkforward", "tune")


def _market_flags(p: argparse.ArgumentParser, data: bool) -> None:
    if data:
        p.add_argument("--data", metavar="PATH", help="bars to replay (DuckDB, CSV or Parquet); default: simulated market")
    p.add_argument("--bars", type=int, metavar="B", help="bars per path / of simulated history")
    p.add_argument("--out", required=True, metavar="RESULT.duckdb", help="result file (never the live store); "
                   "an HTML report is written next to it")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def add_validate_parsers(sub: argparse._SubParsersAction, common: Callable[..., None]) -> None:  # type: ignore[type-arg]
    mc = sub.add_parser("mc", help="Monte Carlo stress test: many full engine runs per scenario")
    common(mc, sim=True)
    mc.add_argument("--scenarios", metavar="LIST", help="comma list of bull,bear,sideways,crash,recovery,jump,bootstrap "
                    "(default: all)")
    mc.add_argument("--n", type=int, default=None, metavar="N", help="paths per scenario (default 10000)")
    mc.add_argument("--workers", type=int, default=None, metavar="W", help="local worker processes (default: CPU count)")
    mc.add_argument("--ray", metavar="ADDRESS", help="run on a Ray cluster ('local' starts one here)")
    _market_flags(mc, data=False)
    for name, helptext in (("walkforward", "rolling retrain-then-trade folds on the same engine"),
                           ("tune", "hyperparameter search maximising out-of-sample IC under purged splits")):
        p = sub.add_parser(name, help=helptext)
        common(p, sim=True)
        _market_flags(p, data=True)
        p.add_argument("--purge", type=int, default=None, metavar="N", help="bars dropped between train and test")
        p.add_argument("--embargo", type=int, default=None, metavar="N", help="bars after a test block kept out of training")
        p.add_argument("--workers", type=int, default=None, metavar="W", help="local worker processes")
        p.add_argument("--ray", metavar="ADDRESS", help="run on a Ray cluster ('local' starts one here)")
        if name == "walkforward":
            p.add_argument("--train-window", type=int, default=None, metavar="N", help="bars of training per fold")
            p.add_argument("--test-window", type=int, default=None, metavar="N", help="bars traded per fold")
        else:
            p.add_argument("--trials", type=int, default=None, metavar="N", help="configurations tried (default 24)")
            p.add_argument("--folds", type=int, default=None, metavar="K", help="purged CV folds (default 5)")


def _positive(flag: str, value: int | None) -> None:
    if value is not None and value <= 0:
        raise ConfigError(flag, f"must be > 0, got {value}")


def _workers(value: int | None, cfg: Config) -> int:
    import os

    _positive("--workers", value)
    return value or cfg.validate.workers or max(1, os.cpu_count() or 1)


def _ray(value: str | None, cfg: Config) -> str | None:
    return value if value is not None else (cfg.validate.ray_address or None)


def run_validate(args: argparse.Namespace, cfg: Config) -> int:
    from algobotd.ops import logging as oplog

    oplog.setup(cfg.logging.level, cfg.logging.format, stream=sys.stderr)
    for flag in ("bars", "n", "symbols", "train_window", "test_window", "trials", "folds"):
        _positive("--" + flag.replace("_", "-"), getattr(args, flag, None))
    if getattr(args, "data", None) and not Path(args.data).exists():
        raise ConfigError("--data", f"no such file: {args.data}")
    if args.command == "mc":
        from algobotd.validate.montecarlo import McSpec, format_mc, parse_scenarios, run_montecarlo

        spec = McSpec(scenarios=parse_scenarios(args.scenarios), n=args.n or cfg.validate.mc_paths,
                      symbols=args.symbols or cfg.validate.mc_symbols, bars=args.bars or cfg.validate.mc_bars,
                      seed=args.seed if args.seed is not None else cfg.feed.sim.seed,
                      workers=_workers(args.workers, cfg), ray_address=_ray(args.ray, cfg))
        result = run_montecarlo(cfg, spec, Path(args.out))
        print(json.dumps(result) if args.json else format_mc(result))
        return 0
    if args.command == "walkforward":
        from algobotd.validate.walkforward import WfSpec, format_wf, run_walkforward

        wf = WfSpec(data=args.data, bars=args.bars, train_window=args.train_window, test_window=args.test_window,
                    purge=args.purge, embargo=args.embargo, workers=_workers(args.workers, cfg), ray_address=_ray(args.ray, cfg))
        result = run_walkforward(cfg, wf, Path(args.out))
        print(json.dumps(result) if args.json else format_wf(result))
        return 0
    from algobotd.validate.tune import TuneSpec, format_tune, run_tune

    ts = TuneSpec(data=args.data, bars=args.bars, trials=args.trials or 24, folds=args.folds or 5,
                  purge=args.purge, embargo=args.embargo, workers=_workers(args.workers, cfg), ray_address=_ray(args.ray, cfg))
    result = run_tune(cfg, ts, Path(args.out))
    print(json.dumps(result) if args.json else format_tune(result))
    return 0
