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

import pytest

from algobotd.altdata import edgar
from algobotd.altdata.edgar import EdgarForm4
from algobotd.altdata.hub import AltHub
from algobotd.altdata.sentiment import LexiconScorer

FIX = Path(__file__).parent / "fixtures"
JPM_CIK, AAPL_CIK = 19617, 320193


class FakeSEC(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, str]]] = []
    fail = False

    def log_message(self, *a: object) -> None:
        pass

    def do_GET(self) -> None:
        ua = self.headers.get("User-Agent", "")
        FakeSEC.requests.append((self.path, ua))
        if "@" not in ua:  # SEC refuses undeclared clients
            return self._send(403, b"declare your user agent")
        if FakeSEC.fail:
            return self._send(503, b"busy")
        p = self.path
        if p == "/files/company_tickers.json":
            body = {"0": {"cik_str": AAPL_CIK, "ticker": "AAPL", "title": "Apple Inc."},
                    "1": {"cik_str": JPM_CIK, "ticker": "JPM", "title": "JPMorgan"}}
            return self._send(200, json.dumps(body).encode())
        if p == f"/submissions/CIK{JPM_CIK:010d}.json":
            recent = {"accessionNumber": ["0001127602-24-012345", "0000019617-24-000111"],
                      "form": ["4", "10-Q"], "primaryDocument": ["xslF345X05/form4.txt", "q.htm"]}
            return self._send(200, json.dumps({"cik": str(JPM_CIK), "filings": {"recent": recent}}).encode())
        if p == f"/submissions/CIK{AAPL_CIK:010d}.json":
            recent = {"accessionNumber": ["0001214156-24-000007", "0001214156-24-000008"], "form": ["4", "4"],
                      "primaryDocument": ["xslF345X05/wk-form4.xml", "broken.xml"]}
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
    FakeSEC.requests, FakeSEC.fail = [], False
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
