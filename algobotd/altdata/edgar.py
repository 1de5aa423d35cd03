"""EDGAR Form 4 fetcher (``altdata.form4``, off by default: it needs internet access and SEC's
required ``User-Agent: Name email``).

Per poll: ticker -> CIK from ``company_tickers.json`` (once), then each company's
``submissions/CIK##########.json``; every Form 4 / 4/A not seen before is downloaded as raw
XML (the ``primaryDocument`` path may point at SEC's XSL rendering, ``xslF345X05/...``; the raw
file is its basename in the same folder), parsed by :func:`parse_form4` and added to an
:class:`InsiderBook`; its new open-market rows reach the features as an ``InsiderFiling``
stamped with EDGAR's acceptance time (``acceptanceDateTime``; without it, the end of the filing
day in New York), never the earlier trade date. The first successful poll also sends an empty
filing per covered symbol: from then on "no insider trades" reads 0, not NaN. SEC allows
10 requests/s; we stay at ``1 / REQUEST_GAP`` with httpx's
async client, so the daemon loop never blocks. Hosts are parameters so tests use a local fake.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import structlog

from algobotd.altdata.form4 import Form4Error, InsiderBook, filing_event, parse_form4
from algobotd.altdata.hub import AltHub
from algobotd.domain import InsiderFiling

log = structlog.get_logger(__name__)
NAME = "sec_form4"
REQUEST_GAP = 0.15  # seconds between requests (SEC's fair-access limit is 10/s)
NEW_YORK = ZoneInfo("America/New_York")


def published_ns(acceptance: str, filing_date: str) -> int | None:
    """EDGAR's acceptance time, else the end of the filing day in New York (never earlier than
    the market could have read the filing); None when neither parses."""
    try:
        t = dt.datetime.fromisoformat(acceptance.replace("Z", "+00:00"))
        return int((t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp() * 1e6) * 1000
    except (ValueError, AttributeError):
        pass
    try:
        day = dt.date.fromisoformat(filing_date)
    except (ValueError, TypeError):
        return None
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=NEW_YORK)
    return int(end.timestamp()) * 1_000_000_000


class EdgarForm4:
    def __init__(self, hub: AltHub, symbols: tuple[str, ...], user_agent: str, poll_seconds: float = 3600.0,
                 data_url: str = "https://data.sec.gov", www_url: str = "https://www.sec.gov",
                 window_days: int = 90, now_ns: Callable[[], int] = time.time_ns) -> None:
        if not user_agent.strip():
            raise ValueError("EDGAR requires a user agent (\"Name email@example.com\")")
        self.hub, self.symbols, self.poll_seconds = hub, symbols, poll_seconds
        self.data_url, self.www_url = data_url.rstrip("/"), www_url.rstrip("/")
        self.headers = {"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"}
        self.book = InsiderBook(window_days)
        self.ciks: dict[str, int] = {}
        self.seen: set[str] = set()  # accession numbers already parsed
        self.filings = 0
        self.bad_filings = 0
        self.now_ns = now_ns
        self.covered = False  # coverage filings sent
        hub.source(NAME, "insider")

    async def _get(self, client: httpx.AsyncClient, url: str) -> httpx.Response:
        await asyncio.sleep(REQUEST_GAP)
        r = await client.get(url, headers=self.headers, timeout=20.0)
        r.raise_for_status()
        return r

    async def _map_ciks(self, client: httpx.AsyncClient) -> None:
        rows: dict[str, Any] = (await self._get(client, f"{self.www_url}/files/company_tickers.json")).json()
        by_ticker = {str(v.get("ticker", "")).upper(): int(v["cik_str"]) for v in rows.values() if "cik_str" in v}
        self.ciks = {s: by_ticker[s] for s in self.symbols if s in by_ticker}
        missing = [s for s in self.symbols if s not in self.ciks]
        if missing:
            self.hub.count("form4_unknown_ticker", len(missing))

    async def poll_once(self) -> int:
        """One pass over every symbol; returns how many new transactions were added."""
        added = 0
        async with httpx.AsyncClient(follow_redirects=True) as client:
            if not self.ciks:
                await self._map_ciks(client)
            for sym, cik in self.ciks.items():
                sub = (await self._get(client, f"{self.data_url}/submissions/CIK{cik:010d}.json")).json()
                recent = (sub.get("filings") or {}).get("recent") or {}
                n = len(recent.get("accessionNumber", []))
                rows = zip(recent.get("accessionNumber", []), recent.get("form", []), recent.get("primaryDocument", []),
                           recent.get("acceptanceDateTime", [""] * n), recent.get("filingDate", [""] * n))
                for acc, form, doc, accepted, filed in rows:
                    if form not in ("4", "4/A") or acc in self.seen:
                        continue
                    url = f"{self.www_url}/Archives/edgar/data/{cik}/{acc.replace('-', '')}/{doc.rsplit('/', 1)[-1]}"
                    try:
                        trades = parse_form4((await self._get(client, url)).content)
                    except Form4Error as exc:
                        self.bad_filings += 1
                        self.hub.count("form4_unparsable")
                        log.info("form 4 skipped", accession=acc, error=str(exc))
                        trades = []
                    self.seen.add(acc)
                    self.filings += 1
                    new = self.book.add_new([t for t in trades if t.symbol == sym])
                    added += len(new)
                    when = published_ns(accepted, filed)
                    if when is None:
                        self.hub.count("form4_no_publication_time")  # unplaceable in time: not a feature
                    elif new:  # queued at once: a later failure in this poll must not lose it (it is ``seen``)
                        self.hub.add_insider([filing_event(sym, when, new)], NAME)
        if not self.covered:
            now = self.now_ns()
            self.hub.add_insider([InsiderFiling(s, now, "", 0.0, 0.0) for s in self.ciks], NAME)
            self.covered = True
        h = self.hub.sources[NAME]
        h.events += added
        h.extra = self.features(dt.datetime.now(tz=dt.UTC).date())
        self.hub.mark_ok(NAME)
        return added

    def features(self, asof: dt.date) -> dict[str, dict[str, float]]:
        return {s: self.book.features(s, asof) for s in self.ciks}

    async def run(self) -> None:
        while True:
            t0 = time.monotonic()
            try:
                await self.poll_once()
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                self.hub.mark_failed(NAME, f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(max(1.0, self.poll_seconds - (time.monotonic() - t0)))
