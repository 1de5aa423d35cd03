"""``algobotd ctl ingest`` against a real control server whose ``ingest`` runs the real social
ingestion into a real AltHub (scorer, de-duplication, counts)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ctl_server_thread import ServerThread, ctl, running_server

from algobotd.altdata.hub import AltHub
from algobotd.altdata.sentiment import LexiconScorer
from algobotd.altdata.social import ingest_lines_async
from algobotd.control import ingest
from algobotd.control.target import ControlError

GOOD = [
    {"ts": "2024-05-01T14:30:05Z", "symbol": "AAPL", "source": "reddit", "text": "AAPL crushed earnings, record profit"},
    {"ts": 1714573807, "symbol": "MSFT", "source": "stocktwits", "score": -0.5, "weight": 2.0, "id": "st-1"},
]


class HubIngest:
    """The daemon adapter's ``ingest`` (control/adapter.py) over a real hub; ``off`` = altdata disabled."""

    def __init__(self) -> None:
        self.hub = AltHub(LexiconScorer())
        self.requests = 0
        self.off = False

    async def __call__(self, lines: list[Any], actor: str) -> dict[str, Any]:
        if self.off:
            raise ControlError("unavailable", "alternative data is off (altdata.enabled = false)")
        self.requests += 1
        return (await ingest_lines_async(self.hub, list(lines), where=actor)).to_json()


@pytest.fixture
def daemon() -> Iterator[tuple[ServerThread, HubIngest]]:
    with running_server() as srv:
        sink = HubIngest()
        srv.target.ingest = sink  # type: ignore[attr-defined]
        yield srv, sink


def test_ingest_file_all_accepted_then_duplicates(daemon: tuple[ServerThread, HubIngest], tmp_path: Path) -> None:
    srv, sink = daemon
    f = tmp_path / "posts.jsonl"
    f.write_text("".join(json.dumps(x) + "\n" for x in GOOD) + "\n")  # a trailing blank line is skipped
    code, out, err = ctl(["--socket", str(srv.path), "ingest", str(f)])
    assert code == 0 and err == ""
    assert out == "accepted 2  duplicates 0  rejected 0  (of 2 lines)\n"
    by_sym = {n.symbols[0]: n for n in sink.hub.pending_news}
    assert by_sym["AAPL"].sentiment > 0 and by_sym["MSFT"].sentiment == pytest.approx(-1.0)
    code, out, _ = ctl(["--socket", str(srv.path), "--json", "ingest", str(f)])
    assert code == 0 and json.loads(out) == {"lines": 2, "accepted": 0, "duplicates": 2, "rejected": 0,
                                             "rejected_lines": [], "daemon_errors": []}


def test_ingest_stdin_rejects_with_line_numbers_and_keeps_the_rest(daemon: tuple[ServerThread, HubIngest]) -> None:
    srv, sink = daemon
    text = "\n".join([json.dumps(GOOD[0]), "{broken", "", json.dumps({**GOOD[1], "symbol": "msft"}),
                      json.dumps(GOOD[1])]) + "\n"
    code, out, err = ctl(["--socket", str(srv.path), "ingest"], stdin=text)
    assert code == 1  # some lines rejected
    assert out == "accepted 2  duplicates 0  rejected 2  (of 4 lines)\n"
    assert err.splitlines() == ["line 2: bad_json", "line 4: bad_symbol: 'msft'"]  # numbers count blank lines
    assert {n.symbols[0] for n in sink.hub.pending_news} == {"AAPL", "MSFT"}  # nothing valid was lost
    code, out, _ = ctl(["--socket", str(srv.path), "ingest", "-", "--json"], stdin="[1]\n")
    assert code == 1
    assert json.loads(out)["rejected_lines"] == [{"line": 1, "reason": "not_an_object", "detail": ""}]


def test_large_input_is_split_into_requests_under_the_socket_limit(
        daemon: tuple[ServerThread, HubIngest], monkeypatch: pytest.MonkeyPatch) -> None:
    srv, sink = daemon
    monkeypatch.setattr(ingest, "REQUEST_BUDGET", 4096)
    lines = [json.dumps({"ts": 1714573805 + k, "symbol": "AAPL", "source": "x", "score": 0.1, "id": f"k{k}",
                         "text": "word " * 40}) for k in range(300)]
    code, out, _ = ctl(["--socket", str(srv.path), "ingest"], stdin="\n".join(lines))
    assert code == 0 and out.startswith("accepted 300  duplicates 0  rejected 0")
    assert sink.requests > 10 and len(sink.hub.pending_news) == 300


def test_error_reply_and_usage_errors(daemon: tuple[ServerThread, HubIngest], tmp_path: Path) -> None:
    srv, sink = daemon
    sink.off = True
    code, _, err = ctl(["--socket", str(srv.path), "ingest"], stdin=json.dumps(GOOD[0]) + "\n")
    assert code == 1 and "unavailable" in err and "altdata.enabled" in err
    code, _, err = ctl(["--socket", str(srv.path), "ingest", str(tmp_path / "missing.jsonl")])
    assert code == 2 and "cannot read" in err
    code, _, err = ctl(["--socket", str(tmp_path / "nobody.sock"), "ingest"], stdin=json.dumps(GOOD[0]))
    assert code == 2 and "no daemon socket" in err
    code, _, _ = ctl(["--socket", str(srv.path), "ingest", "a.jsonl", "b.jsonl"])  # one file at most
    assert code == 2
