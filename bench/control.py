"""Control server benchmark: change-to-subscriber latency and the server's CPU cost.

    python bench/control.py            # ~40 s
    python bench/control.py --quick    # ~8 s, smaller samples (smoke)

The server and a synthetic engine (``BenchTarget``: 20 positions, 20 predictions, 600-point
equity curve, 100 events — a bar's worth of data) run in this process; subscribers run in a
child process so their JSON decoding is not billed to the server. CLOCK_MONOTONIC is
system-wide on Linux, so send and receive times are comparable across the two processes.

Figures printed (never asserted):
  1. idle CPU: the engine changing at 20 Hz, no subscribers (the baseline);
  2. 10 subscribers to every topic while the engine changes at 20 Hz: server CPU, and the age
     of each state when a subscriber receives it (the throttle, <= 4/s, dominates);
  3. latency of the unthrottled path: 10 status subscribers, one change every 0.3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import logging  # noqa: E402

import structlog  # noqa: E402

from algobotd.control.client import ControlClient  # noqa: E402
from algobotd.control.server import serve  # noqa: E402

SYMBOLS = [f"S{i:03d}" for i in range(20)]


class BenchTarget:
    """A ControlTarget whose status carries a change sequence number (in ``equity``)."""

    def __init__(self) -> None:
        self.seq = 0
        self.change_ns: dict[int, int] = {}
        self.listeners: list[Callable[[str], None]] = []
        self.curve = [{"ts": f"2024-01-02T14:{i // 60 % 60:02d}:{i % 60:02d}Z", "equity": 1e6 + i, "cash": 5e5,
                       "drawdown": 0.001} for i in range(600)]
        self.log = [{"ts": "2024-01-02T14:30:00Z", "kind": "fill", "message": f"filled order {i}"} for i in range(100)]

    def change(self) -> None:
        self.seq += 1
        self.change_ns[self.seq] = time.monotonic_ns()
        self.curve = [*self.curve[1:], {**self.curve[-1], "equity": 1e6 + self.seq}]
        for topic in ("status", "positions", "predictions", "risk", "equity"):
            for listener in list(self.listeners):
                listener(topic)

    def status(self) -> dict[str, Any]:
        return {"mode": "sim", "trading_state": "ACTIVE", "trading_state_reason": "", "equity": float(self.seq),
                "cash": 5e5, "day_pnl": 1234.5, "drawdown": 0.001, "positions": 20, "open_orders": 3,
                "last_bar_ts": "2024-01-02T15:30:00Z", "feed_connected": True, "broker_connected": True,
                "model_id": "ens-0001", "gross_exposure": 5e5, "drawdown_limit": 0.05}

    def positions(self) -> list[dict[str, Any]]:
        return [{"symbol": s, "qty": 100 + i, "avg_cost": 50.0 + i, "last": 51.0 + i + self.seq % 7 / 100,
                 "market_value": (100 + i) * (51.0 + i), "unrealized_pnl": 100.0 + i, "soft_stop": 48.0 + i,
                 "hard_stop": 46.0 + i} for i, s in enumerate(SYMBOLS)]

    def orders(self) -> list[dict[str, Any]]:
        return [{"client_order_id": f"c-{i}", "symbol": SYMBOLS[i], "side": "buy", "qty": 10, "filled_qty": 0,
                 "type": "limit", "limit_price": 50.0, "status": "accepted", "ts": "2024-01-02T15:30:00Z"}
                for i in range(3)]

    def predictions(self) -> list[dict[str, Any]]:
        return [{"symbol": s, "prediction": (self.seq + i) % 9 / 1000, "confidence": 0.6,
                 "weights": {"gbm": 0.5, "lstm": 0.3, "tcn": 0.2}} for i, s in enumerate(SYMBOLS)]

    def risk(self) -> dict[str, Any]:
        return {"trading_state": "ACTIVE", "reason": "", "breakers": [
            {"name": n, "value": 0.01, "threshold": 0.05, "tripped": False} for n in ("drawdown", "daily_loss", "rejects")]}

    def equity_curve(self, limit: int = 2000) -> list[dict[str, Any]]:
        return self.curve[-limit:]

    def events(self, limit: int = 200) -> list[dict[str, Any]]:
        return self.log[-limit:]

    async def _noop(self, *args: Any) -> dict[str, Any]:
        return {}

    halt = reduce = resume = flatten = cancel_all = retrain = _noop  # type: ignore[assignment]

    def add_change_listener(self, listener: Callable[[str], None]) -> None:
        self.listeners.append(listener)

    def remove_change_listener(self, listener: Callable[[str], None]) -> None:
        self.listeners.remove(listener)


# --- subscriber process -----------------------------------------------------------------------


async def subscriber_main(path: str, n: int, topics: list[str], duration: float) -> None:
    """Child process: n clients; prints JSON {client: [(seq, recv_ns), ...]} on exit."""
    results: dict[int, list[tuple[int, int]]] = {i: [] for i in range(n)}
    counts = {i: 0 for i in range(n)}

    async def one(i: int) -> None:
        async with await ControlClient.connect(path, client="bench") as c:
            async for msg in c.subscribe(topics):
                counts[i] += 1
                if msg.topic == "status":
                    results[i].append((int(msg.data.equity), time.monotonic_ns()))

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    print("READY", flush=True)
    await asyncio.sleep(duration)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"status": results, "messages": counts}), flush=True)


# --- driver -----------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def drive(target: BenchTarget, hz: float, seconds: float) -> tuple[float, float]:
    """Change the target at ``hz`` for ``seconds``; returns (cpu seconds, wall seconds)."""
    period = 1.0 / hz
    cpu0, wall0 = time.process_time(), time.monotonic()
    next_t = wall0
    while time.monotonic() - wall0 < seconds:
        target.change()
        next_t += period
        await asyncio.sleep(max(0.0, next_t - time.monotonic()))
    return time.process_time() - cpu0, time.monotonic() - wall0


async def with_subscribers(path: Path, n: int, topics: list[str], seconds: float,
                           body: Callable[[], Any]) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--subscriber", str(path), "--n", str(n), "--topics", ",".join(topics),
        "--duration", str(seconds + 2.0), stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    assert line.strip() == b"READY", line
    await asyncio.sleep(1.0)  # connections and initial snapshots settle
    result = await body()
    out = await proc.stdout.read()
    await proc.wait()
    data = json.loads(out.decode().strip().splitlines()[-1])
    data["result"] = result
    return data


def latencies(target: BenchTarget, status: dict[str, list[list[int]]]) -> tuple[list[float], list[float]]:
    """(age of each delivered state in ms, for each change: ms until a state >= it arrived)."""
    ages: list[float] = []
    first: list[float] = []
    for rows in status.values():
        # the first message is the snapshot sent on subscribe: its state predates the run
        seqs = [(seq, ns) for seq, ns in rows[1:] if seq in target.change_ns]
        ages += [(ns - target.change_ns[seq]) / 1e6 for seq, ns in seqs]
        if not seqs:
            continue
        lo, hi = seqs[0][0], seqs[-1][0]
        j = 0
        for s in range(lo + 1, hi + 1):
            while j < len(seqs) and seqs[j][0] < s:
                j += 1
            if j < len(seqs):
                first.append((seqs[j][1] - target.change_ns[s]) / 1e6)
    return ages, first


def min_gap_ms(status: dict[str, list[list[int]]]) -> float:
    """Smallest spacing between two consecutive status messages to one client (as received)."""
    gaps = [(b[1] - a[1]) / 1e6 for rows in status.values() for a, b in itertools.pairwise(rows[1:])]
    return min(gaps) if gaps else float("nan")


async def main(quick: bool) -> None:
    seconds = 3.0 if quick else 10.0
    target = BenchTarget()
    d = Path(tempfile.mkdtemp(prefix="abb-", dir="/tmp"))
    path = d / "ctl.sock"
    server = await serve(target, path, heartbeat_s=None)
    all_topics = ["status", "positions", "orders", "predictions", "risk", "equity", "events"]
    try:
        cpu, wall = await drive(target, 20, seconds / 2)
        print(f"engine changing at 20 Hz, 0 subscribers:      CPU {100 * cpu / wall:5.1f}% of one core")

        builds0 = server.snapshot_builds
        data = await with_subscribers(path, 10, all_topics, seconds, lambda: drive(target, 20, seconds))
        cpu, wall = data["result"]
        ages, first = latencies(target, data["status"])
        msgs = sum(data["messages"].values())
        print(f"engine at 20 Hz, 10 subscribers x 7 topics:   CPU {100 * cpu / wall:5.1f}% of one core"
              f"  ({msgs / wall:,.0f} msgs/s sent, {(server.snapshot_builds - builds0) / wall:,.1f} snapshot builds/s)")
        print(f"  delivered status age (throttled, <=4/s):  p50 {pct(ages, 0.5):6.1f} ms  p99 {pct(ages, 0.99):6.1f} ms"
              f"  (n={len(ages)})")
        print(f"  change -> first delivery reflecting it:   p50 {pct(first, 0.5):6.1f} ms  p99 {pct(first, 0.99):6.1f} ms"
              f"  (n={len(first)})")
        rate = statistics.mean(len(v) - 1 for v in data["status"].values()) / wall
        print(f"  status messages per client: {rate:.2f}/s, smallest gap {min_gap_ms(data['status']):.0f} ms"
              " as received (limit 4/s = 250 ms)")

        n_changes = 15 if quick else 50

        async def spaced() -> None:
            for _ in range(n_changes):
                target.change()
                await asyncio.sleep(0.3)  # slower than the throttle: every change is sent at once

        data = await with_subscribers(path, 10, ["status"], n_changes * 0.3, spaced)
        ages, _ = latencies(target, data["status"])
        print(f"unthrottled change -> subscriber (10 subs):   p50 {pct(ages, 0.5):6.2f} ms  p99 {pct(ages, 0.99):6.2f} ms"
              f"  (n={len(ages)})")
    finally:
        await server.close()
        for f in d.iterdir():
            f.unlink()
        d.rmdir()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--subscriber", metavar="PATH", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=10, help=argparse.SUPPRESS)
    ap.add_argument("--topics", default="status", help=argparse.SUPPRESS)
    ap.add_argument("--duration", type=float, default=10.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.subscriber:
        asyncio.run(subscriber_main(args.subscriber, args.n, args.topics.split(","), args.duration))
    else:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        print(f"control bench (pid {os.getpid()}, python {sys.version.split()[0]})")
        asyncio.run(main(args.quick))
