"""The one meeting point of every alternative-data source and the bar-batch path.

Sources (Alpaca/IB news, the social drop directory and ``ingest`` method, option-chain pollers,
Form 4) push records here from tasks on the daemon loop; :meth:`AltHub.attach` moves every
pending event published before a batch's end into that batch (``BarBatch.news`` /
``BarBatch.options`` / ``BarBatch.insider``), so the feature engine sees them exactly as it
sees bars.

Why here and not in each source:
- one de-duplication (news ids repeat across history, the stream and reconnects);
- one scorer, and its name stored with each score;
- one place that stores each item once (``news`` is keyed: INSERT OR IGNORE across restarts);
- one health table: a source that fails is marked down, and its feature group is sent with
  the batch in ``stale_sources`` so the alternative family yields NaN, never stale numbers.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from algobotd.altdata.sentiment import Scorer
from algobotd.domain import NS_PER_SECOND, BarBatch, InsiderFiling, News, OptionsSnapshot

log = structlog.get_logger(__name__)

STATUS_SYMBOLS = 50  # per-symbol details shown in status, per source
SEEN_IDS = 200_000  # news ids remembered for de-duplication (older ones rely on the store's key)


@dataclass
class SourceHealth:
    """Freshness and failures of one source, shown in ``status`` -> ``altdata``."""

    name: str
    group: str  # feature group it feeds: "news" | "options" | "insider"
    ok: bool = True
    events: int = 0
    rejected: int = 0
    errors: int = 0
    last_event_ts: int | None = None  # publication time of the newest event (ns)
    last_ok_wall: float | None = None  # wall clock of the last successful poll/message
    last_error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class AltHub:
    def __init__(self, scorer: Scorer, store: Any | None = None, max_pending: int = 100_000,
                 wall: Callable[[], float] = time.time) -> None:
        self.scorer = scorer
        self.store = store  # StoreWriter (enqueue only) or None in tests that need no file
        self.max_pending = max_pending
        self._wall = wall
        self.pending_news: list[News] = []
        self.pending_options: list[OptionsSnapshot] = []
        self.pending_insider: list[InsiderFiling] = []
        self.options_rows: list[dict[str, float]] = []  # extra chain metrics kept for status
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.sources: dict[str, SourceHealth] = {}
        self.dropped: dict[str, int] = {}
        self.attached_news = 0
        self.attached_options = 0
        self.attached_insider = 0
        self.last_batch: BarBatch | None = None  # spot prices for the option pollers

    # --- health ---------------------------------------------------------------------------------

    def source(self, name: str, group: str) -> SourceHealth:
        h = self.sources.get(name)
        if h is None:
            h = self.sources[name] = SourceHealth(name, group)
        return h

    def mark_ok(self, name: str) -> None:
        h = self.sources[name]
        if not h.ok:
            log.info("alt-data source recovered", source=name)
        h.ok, h.last_ok_wall = True, self._wall()

    def mark_failed(self, name: str, why: str) -> None:
        h = self.sources[name]
        h.errors += 1
        h.last_error = why[:300]
        if h.ok:
            # a warning once per outage, not per retry; trading goes on, the features go NaN
            log.warning("alt-data source failed; its features are NaN until it recovers", source=name, error=h.last_error)
        h.ok = False

    def stale_groups(self) -> frozenset[str]:
        return frozenset(h.group for h in self.sources.values() if not h.ok)

    def count(self, reason: str, k: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + k

    # --- events in ------------------------------------------------------------------------------

    def _remember(self, news_id: str) -> bool:
        """True the first time an id is seen."""
        if news_id in self._seen:
            self._seen.move_to_end(news_id)
            return False
        self._seen[news_id] = None
        if len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        return True

    def score(self, items: list[News]) -> list[News]:
        """Items with their sentiment filled in (pure: safe in a worker thread). History batches
        go through here in ``asyncio.to_thread`` so a slow scorer (a transformer on CPU) never
        blocks the loop; ``add_news(..., prescored_by=scorer.name)`` then stores them."""
        need = [i for i, n in enumerate(items) if n.sentiment is None]
        if not need:
            return items
        out = list(items)
        for i, s in zip(need, self.scorer.score_many([(items[i].headline, items[i].summary) for i in need])):
            out[i] = replace(items[i], sentiment=round(float(s), 6))
        return out

    def add_news(self, items: list[News], source: str, prescored_by: str = "") -> int:
        """Score (items without a sentiment), store once and queue each new item; returns how many
        were new. ``prescored_by`` names whoever scored items that arrive with a sentiment."""
        h = self.sources.get(source) or self.source(source, "news")
        good = [n for n in items if n.id and n.ts > 0 and n.symbols]
        h.rejected += len(items) - len(good)
        fresh = [n for n in good if self._remember(n.id)]
        need = [i for i, n in enumerate(fresh) if n.sentiment is None]
        if need:
            scores = self.scorer.score_many([(fresh[i].headline, fresh[i].summary) for i in need])
            for i, s in zip(need, scores):
                fresh[i] = replace(fresh[i], sentiment=round(float(s), 6))
        scored_here = set(need)
        for i, n in enumerate(fresh):
            self._store_news(n, self.scorer.name if i in scored_here else (prescored_by or n.source))
        self._queue_news(fresh)
        h.events += len(fresh)
        if fresh:
            h.last_event_ts = max(h.last_event_ts or 0, max(n.ts for n in fresh))
        return len(fresh)

    def _store_news(self, n: News, scorer: str) -> None:
        if self.store is not None:
            self.store.add("news", (n.id, n.ts, ",".join(n.symbols), n.headline, n.summary, n.source,
                                    n.sentiment, scorer))

    def _queue_news(self, items: list[News]) -> None:
        self.pending_news += self._fitting(items, len(self.pending_news), "news_pending_overflow")

    def _fitting(self, items: list[Any], pending: int, overflow: str) -> list[Any]:
        """The items that fit under ``max_pending``; the rest counted under ``overflow``: a runaway
        source must not eat the daemon's memory (news are already in the store)."""
        room = max(self.max_pending - pending, 0)
        if len(items) > room:
            self.count(overflow, len(items) - room)
            return items[:room]
        return items

    def add_options(self, snap: OptionsSnapshot, source: str, metrics: dict[str, float] | None = None) -> None:
        h = self.sources.get(source) or self.source(source, "options")
        if len(self.pending_options) >= self.max_pending:
            self.count("options_pending_overflow")
            return
        self.pending_options.append(snap)
        h.events += 1
        h.last_event_ts = max(h.last_event_ts or 0, snap.ts)
        if metrics is not None:
            h.extra[snap.symbol] = {k: (v if math.isfinite(v) else None) for k, v in metrics.items()}
            if self.store is not None:
                self.store.add("options_flow", (snap.ts, snap.symbol, *(metrics.get(k, math.nan) for k in OPTIONS_COLUMNS)))

    def add_insider(self, filings: list[InsiderFiling], source: str) -> None:
        """Queue Form 4 filings (each usable from its publication time ``ts``)."""
        h = self.sources.get(source) or self.source(source, "insider")
        filings = self._fitting(filings, len(self.pending_insider), "insider_pending_overflow")
        self.pending_insider += filings
        if filings:
            h.last_event_ts = max(h.last_event_ts or 0, max(f.ts for f in filings))

    # --- events out -----------------------------------------------------------------------------

    def attach(self, batch: BarBatch, bar_ns: int) -> BarBatch:
        """Move events published before the batch's end into it (in place) and flag down groups."""
        end = batch.ts + bar_ns
        self.last_batch = batch
        for kind in ("news", "options", "insider"):
            pending = getattr(self, f"pending_{kind}")
            if not pending:
                continue
            due = [e for e in pending if e.ts < end]
            if due:
                setattr(self, f"pending_{kind}", [e for e in pending if e.ts >= end])
                setattr(batch, kind, [*getattr(batch, kind), *sorted(due, key=lambda e: e.ts)])
                setattr(self, f"attached_{kind}", getattr(self, f"attached_{kind}") + len(due))
        stale = self.stale_groups()
        if stale:
            batch.stale_sources = batch.stale_sources | stale
        return batch

    def status(self, now_ns: int | None = None) -> dict[str, Any]:
        """Per-source freshness for the dashboard (ages in seconds against ``now_ns``)."""
        now_ns = now_ns if now_ns is not None else time.time_ns()
        out: dict[str, Any] = {"scorer": self.scorer.name, "pending_news": len(self.pending_news),
                               "pending_options": len(self.pending_options),
                               "pending_insider": len(self.pending_insider), "dropped": dict(self.dropped),
                               "sources": {}}
        for h in self.sources.values():
            out["sources"][h.name] = {
                "group": h.group, "ok": h.ok, "events": h.events, "rejected": h.rejected, "errors": h.errors,
                "age_s": None if h.last_event_ts is None else round((now_ns - h.last_event_ts) / NS_PER_SECOND, 1),
                "last_error": h.last_error or None,
            }
            if h.extra:  # per-symbol figures (options flow, insider buying); capped: status streams at 4 Hz
                out["sources"][h.name]["symbols"] = dict(list(h.extra.items())[:STATUS_SYMBOLS])
        return out


# options_flow table columns after (ts, symbol), in order (see store migration 3)
OPTIONS_COLUMNS = ("call_volume", "put_volume", "call_oi", "put_oi", "pcr_volume", "pcr_oi", "atm_iv",
                   "iv_skew", "gamma_exposure", "unusual")
