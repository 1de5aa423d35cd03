"""algobotd command line: run | backtest | ctl.

Every command takes --config PATH, --state-dir PATH and repeatable --set section.key=value;
commands that use the simulated market also take --symbols K and --seed S.
A bad config prints one line naming the key and exits 78.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from pathlib import Path

from algobotd.brokers.base import BrokerError
from algobotd.config import EX_CONFIG, Config, ConfigError, load
from algobotd.models.cli import add_parser as add_train_parser
from algobotd.ops import logging as oplog
from algobotd.validate.cli import VALIDATE_COMMANDS, add_validate_parsers, run_validate

EX_UNAVAILABLE = 69  # sysexits: the broker could not be reached


def _common(p: argparse.ArgumentParser, sim: bool) -> None:
    p.add_argument("--config", metavar="PATH", help="config file (default: the repository's config.toml)")
    p.add_argument("--state-dir", metavar="PATH", help="where the DuckDB file, models and the socket live")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value (repeatable)")
    if sim:
        p.add_argument("--symbols", type=int, metavar="K", help="simulated universe size (feed.sim.symbols)")
        p.add_argument("--seed", type=int, metavar="S", help="simulator seed (feed.sim.seed)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="algobotd", description="algobot trading daemon")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the daemon in the foreground until SIGTERM/SIGINT")
    _common(run, sim=True)
    bt = sub.add_parser("backtest", help="run the engine over history as fast as possible")
    _common(bt, sim=True)
    bt.add_argument("--data", metavar="PATH", help="bars to replay (DuckDB, CSV or Parquet); default: simulated market")
    bt.add_argument("--bars", type=int, metavar="N", help="number of bars after warm-up (default 2000)")
    bt.add_argument("--start", metavar="YYYY-MM-DD")
    bt.add_argument("--end", metavar="YYYY-MM-DD", help="inclusive")
    bt.add_argument("--out", required=True, metavar="RESULT.duckdb", help="result file (never the live store)")
    bt.add_argument("--json", action="store_true", help="print one JSON object")
    sub.add_parser("ctl", help="talk to a running daemon (see: algobotd ctl --help)", add_help=False)
    cb = sub.add_parser("check-broker", help="connect to the configured broker and feed, print account, "
                                             "positions and data permissions; non-zero exit if anything is missing")
    _common(cb, sim=False)
    feats = sub.add_parser("features", help="list the feature registry (names, families, windows, inputs)")
    _common(feats, sim=False)
    feats.add_argument("--json", action="store_true", help="print a JSON list of {name, family, window, inputs}")
    add_validate_parsers(sub, _common)  # mc | walkforward | tune (algobotd/validate/cli.py)
    add_train_parser(sub, _common)  # train (algobotd/models/cli.py)
    return p


def load_config(args: argparse.Namespace) -> Config:
    overrides = list(args.overrides)
    if getattr(args, "symbols", None) is not None:
        overrides.append(f"feed.sim.symbols={args.symbols}")
    if getattr(args, "seed", None) is not None:
        overrides.append(f"feed.sim.seed={args.seed}")
    return load(args.config, overrides, args.state_dir)


def _check_date(flag: str, value: str | None) -> None:
    if value is None:
        return
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(flag, f"expected YYYY-MM-DD, got {value!r}") from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "ctl":
        from algobotd.control.cli import run_ctl

        return run_ctl(argv[1:])
    args = parser().parse_args(argv)
    try:
        cfg = load_config(args)
        if args.command == "backtest":
            _check_date("--start", args.start)
            _check_date("--end", args.end)
            if args.bars is not None and args.bars <= 0:
                raise ConfigError("--bars", f"must be > 0, got {args.bars}")
            if args.data and not Path(args.data).exists():
                raise ConfigError("--data", f"no such file: {args.data}")
        if args.command == "features":
            from algobotd.features.cli import print_features

            return print_features(cfg.features, as_json=args.json)
        if args.command in VALIDATE_COMMANDS:
            return run_validate(args, cfg)
        if args.command == "train":
            from algobotd.models.cli import run_train

            _check_date("--start", args.start)
            _check_date("--end", args.end)
            oplog.setup(cfg.logging.level, cfg.logging.format, stream=sys.stderr)
            return run_train(cfg, args)
        oplog.setup(cfg.logging.level, cfg.logging.format, stream=sys.stderr if args.command == "backtest" else None)
        if args.command == "check-broker":
            from algobotd.brokers.check import check_broker

            return asyncio.run(check_broker(cfg))
        if args.command == "run":
            from algobotd.daemon import Daemon

            # SIGHUP re-reads the same --config file with the same --set overrides
            return asyncio.run(Daemon(cfg, reload_config=lambda: load_config(args)).run())
        if args.command == "backtest":
            from algobotd.backtest import format_summary, run_backtest

            result = asyncio.run(run_backtest(cfg, Path(args.out), bars=args.bars, start=args.start,
                                              end=args.end, data=args.data))
            print(json.dumps(result) if args.json else format_summary(result))
            return 0
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except BrokerError as exc:  # one line, no traceback: bad keys are a config problem (78)
        print(f"broker error: {exc}", file=sys.stderr)
        return EX_CONFIG if exc.code in ("auth", "permission") else EX_UNAVAILABLE
    return 2


if __name__ == "__main__":
    sys.exit(main())
