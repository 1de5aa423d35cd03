"""Sentiment scorer and alt-data hub throughput: prints figures, asserts nothing.

    .venv/bin/python bench/sentiment.py            # 20,000 headlines (+ summaries)
    .venv/bin/python bench/sentiment.py --quick    # 2,000

Cases (CPU seconds of this process, ``time.process_time``; one thread):

- ``headline``: ``LexiconScorer.score(headline)`` per item;
- ``headline+summary``: the same with a ~40-word summary (the blend the daemon stores);
- ``hub.add_news``: score + de-duplicate + queue (no store), in batches of 100 items, the way
  history warm-up and the news stream feed it;
- ``social ingest``: ``ingest_lines`` on JSON text lines (parse + validate + score + queue);
- ``ctl ingest (socket)``: the same lines through ``algobotd ctl ingest`` (stdin) to a control
  server in a thread of this process: the CLI's check, requests under the line limit, the
  server's parse + score + queue (CPU of both sides; compare with ``social ingest``);
- ``transformer``: only with ``--transformer PATH`` (a local checkpoint; never downloaded).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from algobotd.altdata.hub import AltHub
from algobotd.altdata.sentiment import LexiconScorer, make_scorer
from algobotd.altdata.social import ingest_lines, ingest_lines_async
from algobotd.control.cli import run_ctl
from algobotd.control.server import serve
from algobotd.domain import News

TEMPLATES = [
    "{s} beats estimates and raises full-year guidance", "{s} misses estimates as margins shrink",
    "Analysts upgrade {s} to outperform", "Regulators probe accounting at {s}", "{s} does not expect layoffs",
    "{s} shares plunge after profit warning", "{s} announces $2 billion buyback", "{s} to present at conference",
    "{s} wins major defense contract", "{s} recalls vehicles over safety concerns",
]
SUMMARY = ("The company reported quarterly revenue that was better than expected, while operating costs rose "
           "and management said it remains cautious about demand in the second half, citing weak orders in "
           "Europe and a strong dollar that weighed on results.")


def timed(fn, n: int) -> float:
    t0 = time.process_time()
    fn()
    dt = time.process_time() - t0
    return dt / n * 1e6


class IngestTarget:
    """Just enough of a control target for ``ingest`` (the daemon adapter's method, real hub)."""

    def __init__(self, hub: AltHub) -> None:
        self.hub = hub

    async def ingest(self, lines: list[Any], actor: str) -> dict[str, Any]:
        return (await ingest_lines_async(self.hub, list(lines), where=actor)).to_json()

    def add_change_listener(self, listener: Any) -> None:
        pass

    def remove_change_listener(self, listener: Any) -> None:
        pass


def ctl_ingest(lines: list[str], hub: AltHub) -> None:
    """``algobotd ctl ingest`` on ``lines`` against a server on its own loop in a thread."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    with tempfile.TemporaryDirectory(prefix="abl-", dir="/tmp") as d:
        path = Path(d) / "ctl.sock"

        def run() -> None:
            asyncio.set_event_loop(loop)
            server = loop.run_until_complete(serve(IngestTarget(hub), path, heartbeat_s=None))
            ready.set()
            loop.run_forever()
            loop.run_until_complete(server.close())

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        ready.wait(10)
        out = io.StringIO()
        code = run_ctl(["--socket", str(path), "ingest"], stdin=io.StringIO("\n".join(lines)), stdout=out,
                       stderr=io.StringIO())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
    if code != 0 or not out.getvalue().startswith(f"accepted {len(lines)} "):
        raise SystemExit(f"ctl ingest failed ({code}): {out.getvalue()}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--transformer", default="", help="local checkpoint directory (optional)")
    args = ap.parse_args()
    n = 2_000 if args.quick else args.n
    rnd = random.Random(7)
    syms = [f"S{i:03d}" for i in range(200)]
    heads = [rnd.choice(TEMPLATES).format(s=rnd.choice(syms)) for _ in range(n)]
    t0 = time.process_time()
    scorer = LexiconScorer()
    load_ms = (time.process_time() - t0) * 1e3
    rows: list[tuple[str, float]] = []
    rows.append(("headline", timed(lambda: [scorer.score(h) for h in heads], n)))
    rows.append(("headline+summary", timed(lambda: [scorer.score(h, SUMMARY) for h in heads], n)))
    hub = AltHub(scorer, max_pending=10 * n)
    items = [News(f"id{i}", 1 + i, (syms[i % 200],), h) for i, h in enumerate(heads)]
    rows.append(("hub.add_news", timed(lambda: [hub.add_news(items[k:k + 100], "bench") for k in range(0, n, 100)], n)))
    lines = [json.dumps({"ts": 1_714_573_800 + i, "symbol": syms[i % 200], "source": "bench", "text": h})
             for i, h in enumerate(heads)]
    hub2 = AltHub(scorer, max_pending=10 * n)
    rows.append(("social ingest", timed(lambda: ingest_lines(hub2, lines), n)))
    hub3 = AltHub(scorer, max_pending=10 * n)
    rows.append(("ctl ingest (socket)", timed(lambda: ctl_ingest(lines, hub3), n)))
    if args.transformer:
        tr = make_scorer("transformer", args.transformer)
        m = min(n, 512)
        rows.append((f"transformer ({tr.name})", timed(lambda: tr.score_many([(h, "") for h in heads[:m]]), m)))
    print(f"lexicon: {len(scorer.lexicon):,} entries, loaded in {load_ms:.1f} ms (CPU); {n:,} items")
    print(f"{'case':<28}{'us/item':>10}{'items/s':>14}")
    for name, us in rows:
        print(f"{name:<28}{us:>10.1f}{1e6 / us:>14,.0f}")


if __name__ == "__main__":
    main()
