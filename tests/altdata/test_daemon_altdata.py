"""A real ``algobotd run`` (sim market): social lines through the example collector, both by the
control socket's ``ingest`` method and by the drop directory; stored once with the scorer's
name; freshness and counts in ``status``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import duckdb
import pytest

from tests.conftest import ROOT
from tests.daemon_proc import DaemonProcess, clean_env

pytestmark = pytest.mark.timeout(120)
# 2024-01-01: before the simulated market's first bar, so the next batch carries it
LINES = [
    {"ts": "2024-01-01T15:00:00Z", "symbol": "SIM00", "source": "reddit", "text": "SIM00 beats estimates, shares surge"},
    {"ts": "2024-01-01T15:00:01Z", "symbol": "SIM01", "source": "stocktwits", "score": -0.4, "id": "st-1"},
]


def test_collector_to_daemon_by_socket_and_drop_dir(tmp_path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    d = DaemonProcess(state, "feed.sim.speed=600", "altdata.social_poll_seconds=0.2", env=clean_env())
    try:
        d.wait_ready()
        assert d.call("status")["altdata"]["scorer"] == "lexicon-vader-fin-v1"
        posts = tmp_path / "posts.jsonl"
        posts.write_text("\n".join(json.dumps(x) for x in LINES) + "\n")
        out = subprocess.run([sys.executable, "examples/social_collector.py", str(posts), "--socket", str(d.socket)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout.strip().splitlines()[-1]) == {"accepted": 2, "duplicates": 0, "rejected": 0}
        bad = d.call("ingest", lines=["{broken", json.dumps({**LINES[0], "id": "r-9", "text": "SIM02 falls"})])
        assert bad["accepted"] == 1 and bad["rejected"] == 1 and bad["rejected_by_reason"] == {"bad_json": 1}
        # the same through ``algobotd ctl ingest`` (stdin): the broken line reported by number, the other kept
        text = json.dumps({**LINES[1], "id": "ctl-1", "symbol": "SIM04"}) + "\n{broken\n"
        out = subprocess.run([sys.executable, "-m", "algobotd", "ctl", "--socket", str(d.socket), "ingest"], input=text,
                             cwd=ROOT, capture_output=True, text=True, timeout=60, env=clean_env())
        assert out.returncode == 1 and out.stdout.startswith("accepted 1  duplicates 0  rejected 1"), out.stderr
        assert out.stderr.strip() == "line 2: bad_json"
        # drop directory: the collector's atomic file, then a hand-made file with one broken line
        dropped = tmp_path / "dropped.jsonl"
        dropped.write_text(json.dumps({**LINES[0], "id": "dd-1", "symbol": "SIM03"}) + "\n")
        out = subprocess.run([sys.executable, "examples/social_collector.py", str(dropped), "--drop-dir",
                              str(state / "social")], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "wrote 1 lines" in out.stdout, out.stderr
        (state / "social" / "manual.jsonl").write_text(json.dumps({**LINES[0], "id": "dd-1"}) + "\nnot json\n")
        d.wait_until(lambda: (state / "social" / "done" / "manual.jsonl").exists(), what="drop file picked up")
        st = d.wait_until(lambda: (s := d.call("status")["altdata"])["pending_news"] == 0 and s, what="news attached")
        social = st["sources"]["social"]
        assert social["ok"] and social["events"] == 5 and social["rejected"] == 2  # ctl's reject never left the CLI
        assert "bad_json" in (state / "social" / "rejected" / "manual.jsonl").read_text()
    finally:
        code = d.stop(signal.SIGTERM)
    assert code == 0
    with duckdb.connect(str(state / "algobot.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT news_id, symbols, source, sentiment, scorer FROM news "
                           "WHERE source LIKE 'social:%' ORDER BY news_id").fetchall()
    by_id = {r[0]: r for r in rows}
    assert len(rows) == 5 and by_id["social:stocktwits:ctl-1"][1] == "SIM04"
    assert by_id["social:stocktwits:st-1"][3] == pytest.approx(-0.4) and by_id["social:stocktwits:st-1"][4] == "publisher"
    texted = [r for r in rows if r[4] == "lexicon-vader-fin-v1"]
    assert len(texted) == 3 and sorted(r[1] for r in texted) == ["SIM00", "SIM00", "SIM03"]
    assert all(r[3] > 0 for r in texted if r[0] != "social:reddit:r-9") and by_id["social:reddit:r-9"][3] < 0
