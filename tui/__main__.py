"""``algobot-tui [--socket PATH] [--config PATH] [--state-dir PATH]``"""

from __future__ import annotations

import argparse
import sys

from algobotd.config import EX_CONFIG, ConfigError
from algobotd.control.paths import resolve_client_socket


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="algobot-tui", description="Dashboard for a running algobotd.")
    parser.add_argument("--socket", metavar="PATH", help="control socket (default: from config)")
    parser.add_argument("--config", metavar="PATH", help="config file used to locate the socket")
    parser.add_argument("--state-dir", metavar="PATH", help="override state.dir")
    args = parser.parse_args(argv)
    try:
        path = resolve_client_socket(args.socket, args.config, args.state_dir)
    except ConfigError as exc:
        print(f"algobot-tui: config error: {exc}", file=sys.stderr)
        return EX_CONFIG
    from tui.app import AlgobotApp  # textual is imported only once the arguments are good

    AlgobotApp(path).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
