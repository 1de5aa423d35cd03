"""``algobotd ctl ingest [FILE]``: social JSON lines from a file (or stdin) to the daemon's
``ingest`` method (the format: ``algobotd/altdata/social.py``).

Each line is first checked here with the daemon's own parser, so a rejected line is reported
with its line number and reason, and only valid lines travel; they go in requests kept under
the socket's line limit (``protocol.MAX_LINE_BYTES``), read and sent a request at a time, so a
large file never sits in memory. Blank lines are skipped, as in the drop directory. The daemon
still validates (and de-duplicates) everything it receives: what it rejects is counted too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

import msgspec

from algobotd.control import protocol as p
from algobotd.control.client import ControlClient

REQUEST_BUDGET = p.MAX_LINE_BYTES * 3 // 4  # encoded lines per request; the JSON envelope fits in the rest
T = TypeVar("T")


@dataclass
class IngestReport:
    lines: int = 0  # non-blank input lines
    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # (line number, reason, detail)
    daemon_rejected: int = 0  # valid here, rejected by the daemon (a version difference)
    daemon_errors: list[str] = field(default_factory=list)

    @property
    def rejected_total(self) -> int:
        return len(self.rejected) + self.daemon_rejected

    def to_json(self) -> dict[str, Any]:
        return {"lines": self.lines, "accepted": self.accepted, "duplicates": self.duplicates,
                "rejected": self.rejected_total,
                "rejected_lines": [{"line": n, "reason": r, "detail": d} for n, r, d in self.rejected],
                "daemon_errors": self.daemon_errors}


def sized_groups(items: Iterable[T], size: Callable[[T], int], budget: int) -> Iterator[list[T]]:
    """Consecutive groups whose sizes add up to at most ``budget`` (an item larger than that
    goes alone: the caller rejects such items first)."""
    group: list[T] = []
    total = 0
    for item in items:
        n = size(item)
        if group and total + n > budget:
            yield group
            group, total = [], 0
        group.append(item)
        total += n
    if group:
        yield group


def encoded_size(line: str) -> int:
    """Bytes a line takes in a request (JSON string + separator)."""
    return len(msgspec.json.encode(line)) + 1


def requests(stream: TextIO, report: IngestReport) -> Iterator[list[str]]:
    """Valid lines grouped into requests under ``REQUEST_BUDGET``; rejects go to ``report``."""
    return sized_groups(valid_lines(stream, report), encoded_size, REQUEST_BUDGET)


def valid_lines(stream: TextIO, report: IngestReport) -> Iterator[str]:
    from algobotd.altdata.social import (  # heavy (scorer); only this command needs it
        Rejected,
        parse_line,
    )

    for number, raw in enumerate(stream, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        report.lines += 1
        try:
            parse_line(line)
            if encoded_size(line) > REQUEST_BUDGET:
                raise Rejected("line_too_long", f"{encoded_size(line)} bytes encoded")
        except Rejected as exc:
            detail = str(exc).removeprefix(exc.reason).removeprefix(": ")
            report.rejected.append((number, exc.reason, detail))
            continue
        yield line


async def send_lines(client: ControlClient, stream: TextIO, report: IngestReport) -> None:
    """Read, check and send every request; ``ControlError`` / ``DaemonUnavailable`` propagate
    (``report`` then holds what was sent before)."""
    batches = requests(stream, report)
    while True:
        # reading and parsing off the loop: stdin may block, a file may be large
        chunk = await asyncio.to_thread(next, batches, None)
        if chunk is None:
            return
        result = msgspec.to_builtins(await client.call("ingest", lines=chunk))
        report.accepted += int(result.get("accepted", 0))
        report.duplicates += int(result.get("duplicates", 0))
        report.daemon_rejected += int(result.get("rejected", 0))
        report.daemon_errors += [str(e) for e in result.get("errors", [])]


def render(report: IngestReport) -> tuple[str, str]:
    """(summary for stdout, one line per rejected line for stderr)."""
    summary = (f"accepted {report.accepted}  duplicates {report.duplicates}  rejected {report.rejected_total}"
               f"  (of {report.lines} lines)\n")
    details = "".join(f"line {n}: {r}{': ' + d if d else ''}\n" for n, r, d in report.rejected)
    details += "".join(f"daemon: {e}\n" for e in report.daemon_errors)
    return summary, details
