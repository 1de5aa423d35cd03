"""The EDGAR Form 4 fetcher against a local fake of data.sec.gov / www.sec.gov (never the internet)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import numpy as np
import pytest

from algobotd.altdata import edgar
from algobotd.altdata.edgar import EdgarForm4
from algobotd.altdata.hub import AltHub
from algobotd.altdata.sentiment import LexiconScorer
from algobotd.config import FeaturesConfig
from algobotd.features.engine import FeatureEngine
from tests.altdata.conftest import batch

FIX = Path(__file__).parent / "fixtures"
JPM_CIK, AAPL_CIK = 19617, 320193


class FakeSEC(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, str]]] = []
    fail = False
    fail_paths: ClassVar[set[str]] = set()

    def log_message(self, *a: object) -> None:
        pass

    def do_GET(self) -> None:
        ua = self.headers.get("User-Agent", "")
        FakeSEC.requests.append((self.path, ua))
        if "@" not in ua:  # SEC refuses undeclared clients
            return self._send(403, b"declare your user agent")
        if FakeSEC.fail or self.path in FakeSEC.fail_paths:
            return self._send(503, b"busy")
        p = self.path
        if p == "/files/company_tickers.json":
            body = {"0": {"cik_str": AAPL_CIK, "ticker": "AAPL", "title": "Apple Inc."},
                    "1": {"cik_str": JPM_CIK, "ticker": "JPM", "title": "JPMorgan"}}
            return self._send(200, json.dumps(body).encode())
        if p == f"/submissions/CIK{JPM_CIK:010d}.json":
            recent = {"accessionNumber": ["0001127602-24-012345", "0000019617-24-000111"],
                      "form": ["4", "10-Q"], "primaryDocument": ["xslF345X05/form4.txt", "q.htm"],
                      "acceptanceDateTime": ["2024-05-10T20:15:31.000Z", "2024-05-02T16:00:00.000Z"],
                      "filingDate": ["2024-05-10", "2024-05-02"]}
            return self._send(200, json.dumps({"cik": str(JPM_CIK), "filings": {"recent": recent}}).encode())
        if p == f"/submissions/CIK{AAPL_CIK:010d}.json":
            recent = {"accessionNumber": ["0001214156-24-000007", "0001214156-24-000008"], "form": ["4", "4"],
                      "primaryDocument": ["xslF345X05/wk-form4.xml", "broken.xml"],
                      "filingDate": ["2024-04-04", "2024-04-06"]}  # no acceptance time: end of the filing day
            return self._send(200, json.dumps({"cik": str(AAPL_CIK), "filings": {"recent": recent}}).encode())
        if p == f"/Archives/edgar/data/{JPM_CIK}/000112760224012345/form4.txt":
            return self._send(200, (FIX / "form4_director_buy.txt").read_bytes())
        if p == f"/Archives/edgar/data/{AAPL_CIK}/000121415624000007/wk-form4.xml":
            return self._send(200, (FIX / "form4_ceo_sale_10b51.xml").read_bytes())
        if p.endswith("/broken.xml"):
            return self._send(200, b"<html>maintenance</html>")
        self._send(404, b"not found")

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def sec(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(edgar, "REQUEST_GAP", 0.0)
    FakeSEC.requests, FakeSEC.fail, FakeSEC.fail_paths = [], False, set()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), FakeSEC)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_user_agent_required() -> None:
    with pytest.raises(ValueError):
        EdgarForm4(AltHub(LexiconScorer()), ("AAPL",), "  ")


async def test_fetch_parse_and_net_buying(sec: str) -> None:
    hub = AltHub(LexiconScorer())
    f = EdgarForm4(hub, ("AAPL", "JPM", "ZZZZ"), "algobot tests ops@example.com", data_url=sec, www_url=sec)
    added = await f.poll_once()
    assert added == 3  # JPM: 1 purchase; AAPL: tax withholding + sale; the 10-Q and a broken file skipped
    assert all(ua == "algobot tests ops@example.com" for _, ua in FakeSEC.requests)
    assert f.bad_filings == 1 and hub.dropped == {"form4_unknown_ticker": 1, "form4_unparsable": 1}
    feats = f.features(dt.date(2024, 5, 31))
    assert feats["JPM"]["net_value"] == pytest.approx(975_500.0) and feats["AAPL"]["net_value"] < 0
    assert await f.poll_once() == 0  # filings already seen are not fetched again
    assert sum(1 for p, _ in FakeSEC.requests if "/Archives/" in p) == 3
    FakeSEC.fail = True  # SEC busy: the poll loop marks the source down, it does not end
    task = asyncio.ensure_future(f.run())
    for _ in range(200):
        if not hub.sources["sec_form4"].ok:
            break
        await asyncio.sleep(0.01)
    assert not task.done() and "503" in hub.sources["sec_form4"].last_error
    task.cancel()


def _ns(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso).timestamp()) * 1_000_000_000


async def test_filings_reach_the_features_from_their_publication_time(sec: str) -> None:
    """Form 4 -> hub -> bar batches -> the alternative features, with no look-ahead: a filing counts
    from the batch in which EDGAR published it (not its trade date); covered symbols read 0 before."""
    hub = AltHub(LexiconScorer())
    f = EdgarForm4(hub, ("AAPL", "JPM", "ZZZZ"), "algobot tests ops@example.com", data_url=sec, www_url=sec,
                   now_ns=lambda: _ns("2024-04-01T12:00:00+00:00"))
    await f.poll_once()
    by_symbol = {(x.symbol, x.owner != ""): x for x in hub.pending_insider}
    jpm, aapl = by_symbol[("JPM", True)], by_symbol[("AAPL", True)]
    assert jpm.ts == _ns("2024-05-10T20:15:31+00:00") and jpm.net_value == pytest.approx(975_500.0)
    assert jpm.net_shares > 0 and aapl.net_value < 0 and aapl.net_shares < 0  # withholding (F) nets to 0
    assert aapl.ts == _ns("2024-04-05T00:00:00-04:00")  # no acceptance time: end of the filing day in New York
    assert {x.symbol for x in hub.pending_insider if not x.owner} == {"AAPL", "JPM"}  # coverage, not ZZZZ
    day = 86_400 * 1_000_000_000
    syms = ("AAPL", "JPM", "ZZZZ")
    engine = FeatureEngine(FeaturesConfig(), syms)
    j = engine.names.index("insider_net_value")
    rows = {}
    for k in range(60):
        b = hub.attach(batch(_ns("2024-04-01T00:00:00+00:00") + k * day, syms), day)
        rows[dt.date(2024, 4, 1) + dt.timedelta(days=k)] = engine.update(b)[:, j].copy()
    assert rows[dt.date(2024, 4, 1)][:2].tolist() == [0.0, 0.0] and np.isnan(rows[dt.date(2024, 4, 1)][2])
    assert rows[dt.date(2024, 4, 4)][0] == 0.0 and rows[dt.date(2024, 4, 5)][0] < 0  # published after 4 April
    assert rows[dt.date(2024, 5, 9)][1] == 0.0  # the purchase of 8 May is not known before its filing ...
    assert rows[dt.date(2024, 5, 10)][1] == pytest.approx(np.log1p(975.5))  # ... accepted on 10 May
    assert np.isnan(rows[dt.date(2024, 5, 30)][2])  # not covered (unknown ticker): NaN, never 0
    assert not hub.pending_insider


async def test_a_poll_failing_midway_keeps_the_filings_already_read(sec: str) -> None:
    """AAPL's filing is parsed (and remembered as seen) before JPM's submissions fail: it is
    queued for the features all the same, and the next poll does not fetch it again."""
    hub = AltHub(LexiconScorer())
    f = EdgarForm4(hub, ("AAPL", "JPM"), "algobot tests ops@example.com", data_url=sec, www_url=sec)
    FakeSEC.fail_paths = {f"/submissions/CIK{JPM_CIK:010d}.json"}
    with pytest.raises(httpx.HTTPStatusError, match="503"):
        await f.poll_once()
    assert [(x.symbol, x.net_value < 0) for x in hub.pending_insider] == [("AAPL", True)]
    FakeSEC.fail_paths = set()
    await f.poll_once()
    assert sorted(x.symbol for x in hub.pending_insider if x.owner) == ["AAPL", "JPM"]  # AAPL once
