"""Social JSON-lines ingestion: format, counted rejects, drop directory, the path into the features."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from algobotd.altdata.hub import AltHub
from algobotd.altdata.sentiment import LexiconScorer
from algobotd.altdata.social import DropDirectory, ingest_lines, parse_line, parse_ts
from algobotd.features.engine import FeatureEngine
from tests.altdata.conftest import NS, T0, batch

GOOD = [
    {"ts": "2024-05-01T14:30:05Z", "symbol": "AAPL", "source": "reddit", "text": "AAPL crushed earnings, record profit"},
    {"ts": T0 / NS + 7, "symbol": "MSFT", "source": "stocktwits", "score": -0.5, "weight": 2.0, "id": "st-1"},
]
BAD = [
    "{not json",
    json.dumps([1, 2]),
    json.dumps({"symbol": "AAPL", "source": "x", "text": "hi"}),  # no ts
    json.dumps({"ts": "yesterday", "symbol": "AAPL", "source": "x", "text": "hi"}),
    json.dumps({"ts": 1714573805, "symbol": "aapl", "source": "x", "text": "hi"}),
    json.dumps({"ts": 1714573805, "symbol": "AAPL", "source": "x"}),  # neither text nor score
    json.dumps({"ts": 1714573805, "symbol": "AAPL", "source": "x", "score": 3}),
    json.dumps({"ts": 1714573805, "symbol": "AAPL", "source": "x", "score": 0.1, "weight": -1}),
    json.dumps({"ts": 1714573805, "symbol": "AAPL", "source": "", "text": "hi"}),
]


def hub() -> AltHub:
    return AltHub(LexiconScorer())


def test_timestamps_in_every_documented_form() -> None:
    iso = parse_ts("2024-05-01T14:30:00Z")
    assert iso == T0 == parse_ts("2024-05-01T14:30:00") == parse_ts(T0 / NS) == parse_ts(T0 // 1_000_000)
    assert parse_ts(T0) == T0


def test_malformed_lines_counted_and_nothing_else_lost() -> None:
    h = hub()
    lines = [json.dumps(GOOD[0]), *BAD, json.dumps(GOOD[1])]
    res = ingest_lines(h, lines)
    assert res.accepted == 2 and res.rejected_total == len(BAD)
    assert res.rejected == {"bad_json": 1, "not_an_object": 1, "missing_ts": 1, "bad_ts": 1, "bad_symbol": 1,
                            "no_text_or_score": 1, "bad_score": 1, "bad_weight": 1, "bad_source": 1}
    assert len(res.errors) == len(BAD) and "line 2" in res.errors[0]
    by_sym = {n.symbols[0]: n for n in h.pending_news}
    assert by_sym["AAPL"].sentiment > 0 and by_sym["AAPL"].source == "social:reddit"
    assert by_sym["MSFT"].sentiment == pytest.approx(-1.0)  # publisher score x weight
    assert h.sources["social"].rejected == len(BAD) and h.dropped["social_bad_json"] == 1
    again = ingest_lines(h, [json.dumps(GOOD[0]), json.dumps(GOOD[1])])
    assert again.accepted == 0 and again.duplicates == 2  # re-sent lines are not counted twice


def test_stored_once_with_scorer_name() -> None:
    class Store:
        rows: ClassVar[list[tuple]] = []

        def add(self, table: str, row: tuple) -> None:
            self.rows.append((table, row))

    h = AltHub(LexiconScorer(), Store())
    ingest_lines(h, [GOOD[0], GOOD[1], GOOD[0]])
    rows = Store.rows
    assert len(rows) == 2 and {r[0] for r in rows} == {"news"}
    scorers = {r[1][0]: r[1][-1] for r in rows}
    assert scorers["social:stocktwits:st-1"] == "publisher"
    assert [v for k, v in scorers.items() if k != "social:stocktwits:st-1"] == ["lexicon-vader-fin-v1"]


async def test_drop_directory(tmp_path: Path) -> None:
    h = hub()
    d = DropDirectory(h, tmp_path, 0.01)
    (tmp_path / "a.jsonl.tmp").write_text(json.dumps(GOOD[0]) + "\n")  # still being written: ignored
    (tmp_path / "b.jsonl").write_text("\n".join([json.dumps(GOOD[0]), BAD[0], "", json.dumps(GOOD[1])]) + "\n")
    res = await d.scan_once()
    assert res.accepted == 2 and res.rejected_total == 1
    assert (tmp_path / "done" / "b.jsonl").exists() and not (tmp_path / "b.jsonl").exists()
    rejected = (tmp_path / "rejected" / "b.jsonl").read_text()
    assert "{not json" in rejected and "bad_json" in rejected
    assert (tmp_path / "a.jsonl.tmp").exists()
    assert (await d.scan_once()).accepted == 0  # processed files are not read again


def test_a_valid_line_reaches_the_features() -> None:
    h = hub()
    res = ingest_lines(h, [{"ts": (T0 + 90 * NS) / NS, "symbol": "MSFT", "source": "reddit",
                            "text": "MSFT beats estimates, shares surge"}, "garbage"])
    assert res.accepted == 1 and res.rejected_total == 1
    eng = FeatureEngine(symbols=("AAPL", "MSFT"))
    col = eng.names.index("news_sent")
    # the engine's path (Engine.warm / Engine.process): attach, then the features see the batch
    sent = [eng.update(h.attach(batch(T0 + k * 60 * NS), 60 * NS))[:, col].copy() for k in range(4)]
    assert sent[0][1] == 0.0  # published at T0+90s: not in the first minute's batch (no look-ahead)
    assert sent[1][1] > 0.0 and sent[1][0] == 0.0  # the second batch carries it, for MSFT only
    assert h.attached_news == 1 and not h.pending_news


def test_parse_line_keeps_text() -> None:
    news, score, weight = parse_line(json.dumps(GOOD[0]))
    assert news.headline.startswith("AAPL crushed") and score is None and weight == 1.0
    assert np.isfinite(news.ts)
