"""``algobotd ctl``: talk to a running daemon from a shell.

Exit status: 0 success, 1 error reply (or a declined confirmation, or ``ingest`` lines rejected),
2 usage error, unreadable input or no daemon answers, 78 (EX_CONFIG) when the config that
locates the socket is invalid.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import msgspec

from algobotd.config import EX_CONFIG, ConfigError
from algobotd.control import protocol as p
from algobotd.control.client import ControlClient, DaemonUnavailable
from algobotd.control.ingest import IngestReport, send_lines
from algobotd.control.ingest import render as render_ingest
from algobotd.control.paths import resolve_client_socket
from algobotd.control.target import ControlError

EXIT_OK, EXIT_ERROR, EXIT_UNAVAILABLE = 0, 1, 2

# command -> (protocol method, takes --reason, needs confirmation)
COMMANDS: dict[str, tuple[str, bool, bool]] = {
    "status": ("status", False, False),
    "positions": ("positions", False, False),
    "orders": ("orders", False, False),
    "predictions": ("predictions", False, False),
    "risk": ("risk", False, False),
    "events": ("events", False, False),
    "halt": ("halt", True, False),
    "reduce": ("reduce", True, False),
    "resume": ("resume", False, True),
    "flatten": ("flatten", False, True),
    "cancel-all": ("cancel_all", False, False),
    "retrain": ("retrain", False, False),
}
HELP = {
    "status": "trading state, equity, connections",
    "positions": "open positions",
    "orders": "open orders",
    "predictions": "latest model predictions",
    "risk": "circuit breakers",
    "events": "recent log / risk events",
    "halt": "stop trading: no new orders, open orders cancelled",
    "reduce": "only orders that shrink positions",
    "resume": "back to ACTIVE (asks to type RESUME)",
    "flatten": "close every position (asks to type FLATTEN)",
    "cancel-all": "cancel every open order",
    "retrain": "retrain the models now",
}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: an option given before the command is not overwritten by the subparser default
    common.add_argument("--socket", metavar="PATH", default=argparse.SUPPRESS, help="control socket (default: from config)")
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="config file used to locate the socket")
    common.add_argument("--state-dir", metavar="PATH", default=argparse.SUPPRESS, help="override state.dir")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")
    parser = argparse.ArgumentParser(prog="algobotd ctl", parents=[common], description="Control a running algobotd.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, has_reason, confirm) in COMMANDS.items():
        sp = sub.add_parser(name, parents=[common], help=HELP[name])
        if has_reason:
            sp.add_argument("--reason", default="", help="recorded in the audit trail")
        if confirm:
            sp.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    sp = sub.add_parser("ingest", parents=[common], help="send social JSON lines (file or stdin) to the daemon")
    sp.add_argument("file", nargs="?", default="-", help="JSON-lines file (default: stdin)")
    return parser


def run_ctl(argv: list[str], *, stdin: TextIO | None = None, stdout: TextIO | None = None,
            stderr: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage
        return int(exc.code or 0) and 2
    try:
        path = resolve_client_socket(
            getattr(args, "socket", None), getattr(args, "config", None), getattr(args, "state_dir", None)
        )
    except ConfigError as exc:
        print(f"algobotd ctl: config error: {exc}", file=stderr)
        return EX_CONFIG
    return asyncio.run(_run(args, str(path), stdin, stdout, stderr))


async def _run(args: argparse.Namespace, path: str, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    if args.command == "ingest":
        return await _ingest(args, path, stdin, stdout, stderr)
    method, has_reason, confirm = COMMANDS[args.command]
    as_json = getattr(args, "json", False)
    params: dict[str, Any] = {}
    if has_reason:
        params["reason"] = args.reason
    try:
        client = await ControlClient.connect(path)
    except DaemonUnavailable as exc:
        return _fail(exc, as_json, stdout, stderr, EXIT_UNAVAILABLE)
    except ControlError as exc:
        return _fail(exc, as_json, stdout, stderr, EXIT_ERROR)
    try:
        if confirm:
            word = p.CONFIRM_WORDS[method]
            if not args.yes and not await _confirm(word, stdin, stderr):
                print(f"{args.command}: not confirmed, nothing done", file=stderr)
                return EXIT_ERROR
            params["confirm"] = word
        try:
            result = await client.call(method, **params)
        except DaemonUnavailable as exc:
            return _fail(exc, as_json, stdout, stderr, EXIT_UNAVAILABLE)
        except ControlError as exc:
            return _fail(exc, as_json, stdout, stderr, EXIT_ERROR)
    finally:
        await client.close()
    data = msgspec.to_builtins(result)
    if as_json:
        obj = data if isinstance(data, dict) else {method: data}
        stdout.write(msgspec.json.encode(obj).decode() + "\n")
    else:
        stdout.write(render(method, data))
    return EXIT_OK


async def _ingest(args: argparse.Namespace, path: str, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    try:
        source = stdin if args.file == "-" else await asyncio.to_thread(
            open, args.file, encoding="utf-8", errors="replace")
    except OSError as exc:
        print(f"algobotd ctl: cannot read {args.file}: {exc.strerror or exc}", file=stderr)
        return EXIT_UNAVAILABLE
    try:
        return await _ingest_from(source, path, getattr(args, "json", False), stdout, stderr)
    finally:
        if source is not stdin:
            source.close()


async def _ingest_from(source: TextIO, path: str, as_json: bool, stdout: TextIO, stderr: TextIO) -> int:
    """Exit 0 when every line went in (duplicates included), 1 when any was rejected or the daemon
    refused (altdata off), 2 when the daemon cannot be reached; the counts are printed either way."""
    report = IngestReport()
    try:
        client = await ControlClient.connect(path)
    except ControlError as exc:
        return _fail(exc, as_json, stdout, stderr, EXIT_UNAVAILABLE if isinstance(exc, DaemonUnavailable) else EXIT_ERROR)
    status = EXIT_OK
    try:
        await send_lines(client, source, report)
    except DaemonUnavailable as exc:
        status = _fail(exc, as_json, stdout, stderr, EXIT_UNAVAILABLE)
    except ControlError as exc:
        status = _fail(exc, as_json, stdout, stderr, EXIT_ERROR)
    finally:
        await client.close()
    if as_json:
        if status == EXIT_OK:  # an error has already been written as the one JSON object
            stdout.write(msgspec.json.encode(report.to_json()).decode() + "\n")
    else:
        summary, details = render_ingest(report)
        stdout.write(summary)
        stderr.write(details)
    return EXIT_ERROR if status == EXIT_OK and report.rejected_total else status


async def _confirm(word: str, stdin: TextIO, stderr: TextIO) -> bool:
    print(f"Type {word} (or y) to confirm: ", end="", file=stderr, flush=True)
    line = await asyncio.to_thread(stdin.readline)  # never block the loop, even in a CLI
    return line.strip() in (word, "y", "Y")


def _fail(exc: ControlError, as_json: bool, stdout: TextIO, stderr: TextIO, status: int) -> int:
    if as_json:
        stdout.write(msgspec.json.encode({"error": {"code": exc.code, "message": exc.message}}).decode() + "\n")
    else:
        print(f"algobotd ctl: {exc.code}: {exc.message}", file=stderr)
    return status


# --- human-readable output ------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 10 else f"{v:,.2f}"
    if isinstance(v, dict):
        return " ".join(f"{k}={_fmt(x)}" for k, x in v.items())
    return str(v)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return "(none)\n"
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    out = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    for row in cells:
        # numbers right-aligned, text left-aligned
        out.append("  ".join(
            v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(row, widths, strict=True)
        ).rstrip())
    return "\n".join(out) + "\n"


def _numeric(s: str) -> bool:
    return s.replace(",", "").replace(".", "").replace("-", "").isdigit()


def key_values(d: dict[str, Any], indent: str = "") -> str:
    """Scalars as aligned ``key  value`` lines; nested sections (ops, altdata ...) indented below."""
    flat = {k: v for k, v in d.items() if not _nested(v)}
    width = max((len(k) for k in flat), default=0)
    out = [f"{indent}{k.ljust(width)}  {_fmt(v)}\n" for k, v in flat.items()]
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.append(f"{indent}{k}:\n{key_values(v, indent + '  ')}")
        elif _nested(v):
            cols = list(dict.fromkeys(c for row in v for c in row))
            body = table(v, cols)
            out.append(f"{indent}{k}:\n" + "".join(f"{indent}  {line}\n" for line in body.splitlines()))
    return "".join(out)


def _nested(v: Any) -> bool:
    return (isinstance(v, dict) and bool(v)) or (isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v))


COLUMNS = {
    "positions": ["symbol", "qty", "avg_cost", "last", "market_value", "unrealized_pnl", "soft_stop", "hard_stop"],
    "orders": ["client_order_id", "symbol", "side", "qty", "filled_qty", "type", "limit_price", "status", "ts"],
    "predictions": ["symbol", "prediction", "confidence", "weights"],
    "events": ["ts", "kind", "message"],
}


def render(method: str, data: Any) -> str:
    if method in COLUMNS:
        return table(data, COLUMNS[method])
    if method == "risk":
        head = {k: v for k, v in data.items() if k != "breakers"}
        return key_values(head) + "\n" + table(data.get("breakers", []), ["name", "value", "threshold", "tripped"])
    if isinstance(data, dict):
        return key_values(data)
    return f"{_fmt(data)}\n"
