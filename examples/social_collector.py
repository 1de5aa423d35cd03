#!/usr/bin/env python3
"""Example social-sentiment collector: turns posts you already have into algobotd's JSON lines.

algobotd does not scrape Reddit, X or StockTwits (no free, stable API); you bring the posts
(an export, your own API client, a CSV from a vendor) and this script shows the two ways to
hand them over. Line format (see algobotd/altdata/social.py)::

    {"ts": "2024-05-01T14:30:05Z", "symbol": "AAPL", "source": "reddit", "text": "..."}
    {"ts": 1714573805, "symbol": "TSLA", "source": "stocktwits", "score": -0.6, "weight": 2.5, "id": "st-991"}

Usage (input: a CSV with columns ts,symbol,source,text[,score,weight,id], or JSON lines):

    # 1. drop directory (the daemon picks up *.jsonl every altdata.social_poll_seconds)
    python examples/social_collector.py posts.csv --drop-dir state/social

    # 2. the control socket's ``ingest`` method (needs a peer allowed to control the daemon)
    python examples/social_collector.py posts.csv --socket state/algobotd.sock

    # keep polling a growing export every 30 s
    python examples/social_collector.py posts.csv --drop-dir state/social --follow 30

Cashtags in free text (``$AAPL``) are expanded to one line per ticker when no symbol column is given.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

CASHTAG = re.compile(r"\$([A-Z]{1,5})\b")
MAX_REQUEST_BYTES = 48 * 1024  # the control protocol refuses request lines over 64 KiB


def read_posts(path: Path) -> Iterator[dict[str, Any]]:
    """Rows from a CSV (header required) or a JSON-lines file."""
    with path.open(encoding="utf-8") as fh:
        if path.suffix in (".jsonl", ".json"):
            for line in fh:
                if line.strip():
                    yield json.loads(line)
            return
        for row in csv.DictReader(fh):
            yield {k: v for k, v in row.items() if v not in (None, "")}


def to_lines(posts: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Posts -> algobotd lines; numbers are converted, cashtags expanded."""
    for post in posts:
        line = {k: post[k] for k in ("ts", "symbol", "source", "text", "id") if k in post}
        for k in ("score", "weight"):
            if k in post:
                line[k] = float(post[k])
        if isinstance(line.get("ts"), str) and line["ts"].replace(".", "", 1).isdigit():
            line["ts"] = float(line["ts"])
        line.setdefault("source", "collector")
        if "symbol" in line:
            yield line
            continue
        for tag in sorted(set(CASHTAG.findall(str(line.get("text", ""))))):
            yield {**line, "symbol": tag, **({"id": f"{line['id']}:{tag}"} if "id" in line else {})}


def write_drop_file(lines: list[dict[str, Any]], drop_dir: Path) -> Path:
    """Write to a temporary name, then rename: the daemon never sees a half-written file."""
    drop_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".collector-", suffix=".tmp", dir=drop_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line) + "\n")
    final = drop_dir / f"collector-{time.time_ns()}.jsonl"
    os.replace(tmp, final)
    return final


async def send_socket(lines: list[dict[str, Any]], socket: str) -> dict[str, int]:
    from algobotd.control.client import (
        ControlClient,  # the daemon's own client (same protocol version)
    )
    from algobotd.control.ingest import (
        sized_groups,  # requests under the socket's line limit
    )

    totals = {"accepted": 0, "duplicates": 0, "rejected": 0}
    client = await ControlClient.connect(socket, client="social-collector")
    try:
        for batch in sized_groups(lines, lambda line: len(json.dumps(line)) + 2, MAX_REQUEST_BYTES):
            res = await client.call("ingest", lines=batch)
            for k in totals:
                totals[k] += int(res.get(k, 0))
            for err in res.get("errors", [])[:5]:
                print(f"rejected: {err}", file=sys.stderr)
    finally:
        await client.close()
    return totals


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input", type=Path, help="CSV (ts,symbol,source,text[,score,weight,id]) or JSON lines")
    dest = ap.add_mutually_exclusive_group(required=True)
    dest.add_argument("--drop-dir", type=Path)
    dest.add_argument("--socket")
    ap.add_argument("--follow", type=float, default=0.0, help="re-read the input every N seconds (new rows only)")
    args = ap.parse_args(argv)
    sent = 0
    while True:
        lines = list(to_lines(read_posts(args.input)))[sent:]
        if lines:
            if args.drop_dir:
                print(f"wrote {len(lines)} lines to {write_drop_file(lines, args.drop_dir)}")
            else:
                print(json.dumps(asyncio.run(send_socket(lines, args.socket))))
            sent += len(lines)
        if not args.follow:
            return 0
        time.sleep(args.follow)


if __name__ == "__main__":
    sys.exit(main())
