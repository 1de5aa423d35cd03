"""Social sentiment ingestion: a documented JSON-lines format, a watched drop directory, and the
parsing behind the control socket's ``ingest`` method.

Reddit, X and StockTwits offer no free, stable API, so the daemon does not scrape them; a user's
own collector (see ``examples/social_collector.py``) writes lines in this format::

    {"ts": "2024-05-01T14:30:05Z", "symbol": "AAPL", "source": "reddit", "text": "AAPL crushed earnings"}
    {"ts": 1714573805.2, "symbol": "TSLA", "source": "stocktwits", "score": -0.6, "weight": 2.5, "id": "st-991"}

- ``ts``: ISO-8601 with a zone (or naive = UTC), or epoch seconds / milliseconds / nanoseconds;
- ``symbol``: upper-case ticker; ``source``: short name (stored as ``social:<source>``);
- ``text`` and/or ``score`` (in [-1, 1]); with text only, the daemon's scorer scores it;
- ``weight`` (optional, 0..100, default 1): e.g. followers or upvotes, multiplies the score;
- ``id`` (optional): de-duplicates re-sent lines; without it a hash of the line's content does.

A malformed line is rejected and counted by reason; every other line of the same file or
request is kept. Drop-directory files are picked up when they end in ``.jsonl`` (write to a
temporary name and rename: a half-written file is never read), then moved to ``done/``;
rejected lines are copied to ``rejected/<file>`` with the reason so nothing is lost silently.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import structlog

from algobotd.altdata.hub import AltHub
from algobotd.altdata.sentiment import Scorer
from algobotd.domain import News

log = structlog.get_logger(__name__)

MAX_TEXT = 2000  # characters kept of a post's text
MAX_LINE = 16_384
SOURCE_NAME = "social"


class Rejected(ValueError):
    """A line that breaks the format; ``reason`` is the counter it goes to."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # the first few, for the caller

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def to_json(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected_total,
                "rejected_by_reason": dict(self.rejected), "errors": self.errors[:20]}


def parse_ts(v: Any) -> int:
    """ISO-8601 or epoch seconds/ms/ns -> ns since the epoch (UTC)."""
    if isinstance(v, bool):
        raise Rejected("bad_ts", repr(v))
    if isinstance(v, (int, float)):
        if not math.isfinite(v) or v <= 0:
            raise Rejected("bad_ts", repr(v))
        if v > 1e17:
            return int(v)  # nanoseconds
        if v > 1e11:
            return int(v * 1_000_000)  # milliseconds
        return round(v * 1e6) * 1000  # seconds (to the microsecond: float seconds carry no more)
    if isinstance(v, str):
        try:
            t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise Rejected("bad_ts", v[:40]) from None
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.UTC)
        return int(t.timestamp() * 1e6) * 1000
    raise Rejected("bad_ts", type(v).__name__)


def _symbol(v: Any) -> str:
    if not isinstance(v, str) or not v or len(v) > 12 or v.upper() != v \
            or not v.replace(".", "").replace("-", "").isalnum():
        raise Rejected("bad_symbol", repr(v)[:40])
    return v


def _number(d: dict[str, Any], key: str, lo: float, hi: float, default: float | None) -> float | None:
    v = d.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise Rejected(f"bad_{key}", repr(v)[:40])
    return float(v)


def parse_line(raw: str | bytes | dict[str, Any]) -> tuple[News, float | None, float]:
    """One line -> (News without sentiment, publisher score or None, weight). Raises Rejected."""
    if isinstance(raw, dict):
        d = raw
    else:
        if len(raw) > MAX_LINE:
            raise Rejected("line_too_long")
        try:
            d = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise Rejected("bad_json") from None
        if not isinstance(d, dict):
            raise Rejected("not_an_object")
    if "ts" not in d:
        raise Rejected("missing_ts")
    ts = parse_ts(d["ts"])
    symbol = _symbol(d.get("symbol"))
    source = d.get("source")
    if not isinstance(source, str) or not source or len(source) > 40:
        raise Rejected("bad_source", repr(source)[:40])
    text = d.get("text")
    if text is not None and (not isinstance(text, str) or not text.strip()):
        raise Rejected("bad_text")
    score = _number(d, "score", -1.0, 1.0, None)
    if text is None and score is None:
        raise Rejected("no_text_or_score")
    weight = _number(d, "weight", 0.0, 100.0, 1.0)
    assert weight is not None
    given = d.get("id")
    if given is not None and (not isinstance(given, (str, int)) or isinstance(given, bool) or not str(given)):
        raise Rejected("bad_id")
    key = str(given) if given is not None else hashlib.sha1(
        json.dumps([ts, symbol, source, text, score], ensure_ascii=False).encode()).hexdigest()[:20]
    body = (text or "").strip()[:MAX_TEXT]
    news = News(id=f"social:{source}:{key}", ts=ts, symbols=(symbol,), headline=body, summary="",
                source=f"social:{source}")
    return news, score, weight


@dataclass
class Prepared:
    """Parsed and scored lines, not yet queued (built off the loop, committed on it)."""

    texted: list[News]  # scored here by the daemon's scorer
    published: list[News]  # the publisher's score x weight
    result: IngestResult


def prepare_lines(scorer: Scorer, lines: list[Any], where: str = "ingest") -> Prepared:
    """Parse, validate and score (pure: safe in a worker thread, so a slow scorer never blocks)."""
    res = IngestResult()
    to_score: list[tuple[News, float]] = []
    published: list[News] = []
    for k, raw in enumerate(lines):
        try:
            news, score, weight = parse_line(raw)
        except Rejected as exc:
            res.rejected[exc.reason] = res.rejected.get(exc.reason, 0) + 1
            if len(res.errors) < 20:
                res.errors.append(f"{where} line {k + 1}: {exc}")
            continue
        if score is None:
            to_score.append((news, weight))
        else:
            published.append(replace(news, sentiment=score * weight))
    scores = scorer.score_many([(n.headline, "") for n, _ in to_score]) if to_score else []
    texted = [replace(n, sentiment=round(s * w, 6)) for (n, w), s in zip(to_score, scores)]
    return Prepared(texted, published, res)


def commit_lines(hub: AltHub, p: Prepared) -> IngestResult:
    """Store once and queue prepared lines; counts go to the result and the hub's source health."""
    res = p.result
    h = hub.source(SOURCE_NAME, "news")
    for items, by in ((p.texted, hub.scorer.name), (p.published, "publisher")):
        if items:
            new = hub.add_news(items, SOURCE_NAME, prescored_by=by)
            res.accepted += new
            res.duplicates += len(items) - new
    h.rejected += res.rejected_total
    for reason, n in res.rejected.items():
        hub.count(f"social_{reason}", n)
    if res.accepted or res.duplicates:
        hub.mark_ok(SOURCE_NAME)
    return res


def ingest_lines(hub: AltHub, lines: list[Any], where: str = "ingest") -> IngestResult:
    """Parse, score and queue lines in one go (tests, tools); the daemon splits the two steps."""
    return commit_lines(hub, prepare_lines(hub.scorer, lines, where))


async def ingest_lines_async(hub: AltHub, lines: list[Any], where: str = "ingest") -> IngestResult:
    """Parsing and scoring in a worker thread, queueing on the loop (the hub is loop-owned)."""
    prepared = await asyncio.to_thread(prepare_lines, hub.scorer, lines, where)
    return commit_lines(hub, prepared)


class DropDirectory:
    """Polls a directory for ``*.jsonl`` files; each is ingested once, then moved to ``done/``."""

    def __init__(self, hub: AltHub, path: Path, poll_seconds: float = 2.0) -> None:
        self.hub, self.path, self.poll_seconds = hub, path, poll_seconds
        self.files = 0
        self.totals = IngestResult()
        hub.source(SOURCE_NAME, "news")

    def _read(self, f: Path) -> list[str]:
        with f.open("r", encoding="utf-8", errors="replace") as fh:
            return [line.rstrip("\n") for line in fh if line.strip()]

    def _finish(self, f: Path, bad: list[str]) -> None:
        (self.path / "done").mkdir(exist_ok=True)
        if bad:
            (self.path / "rejected").mkdir(exist_ok=True)
            (self.path / "rejected" / f.name).write_text("\n".join(bad) + "\n", encoding="utf-8")
        f.replace(self.path / "done" / f.name)

    async def scan_once(self) -> IngestResult:
        """Ingest every waiting file (oldest first); the file I/O runs off the event loop."""
        out = IngestResult()
        if not self.path.is_dir():
            return out
        files = sorted(self.path.glob("*.jsonl"), key=lambda p: (p.stat().st_mtime, p.name))
        for f in files:
            lines = await asyncio.to_thread(self._read, f)
            res = await ingest_lines_async(self.hub, lines, where=f.name)
            bad = [e for e in res.errors]  # reasons with line numbers; the lines themselves follow
            bad_lines = [ln for ln in lines if _is_bad(ln)]
            await asyncio.to_thread(self._finish, f, [*("# " + e for e in bad), *bad_lines])
            self.files += 1
            for attr in ("accepted", "duplicates"):
                setattr(out, attr, getattr(out, attr) + getattr(res, attr))
            for reason, n in res.rejected.items():
                out.rejected[reason] = out.rejected.get(reason, 0) + n
            log.info("social file ingested", file=f.name, accepted=res.accepted, rejected=res.rejected_total)
        for attr in ("accepted", "duplicates"):
            setattr(self.totals, attr, getattr(self.totals, attr) + getattr(out, attr))
        for reason, n in out.rejected.items():
            self.totals.rejected[reason] = self.totals.rejected.get(reason, 0) + n
        return out

    async def run(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                await self.scan_once()
            except OSError as exc:  # a permissions problem must not end the watcher
                self.hub.mark_failed(SOURCE_NAME, f"drop directory {self.path}: {exc}")
            await asyncio.sleep(self.poll_seconds)


def _is_bad(line: str) -> bool:
    try:
        parse_line(line)
    except Rejected:
        return True
    return False

