"""Logging: JSON vs console choice, stdlib loggers through structlog, secrets never printed."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import warnings
from collections.abc import Iterator

import pytest
import structlog

from algobotd.config import dump, load
from algobotd.ops import logging as oplog

API_KEY = "AKTESTKEY0123456789"
API_SECRET = "sEcReT/0123456789abcdefXYZ"
WEBHOOK = "https://hooks.example.test/services/T000/B000/XXXXSECRETXXXX"


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    monkeypatch.setenv("ALPACA_API_KEY_ID", API_KEY)
    monkeypatch.setenv("ALPACA_API_SECRET_KEY", API_SECRET)
    out = io.StringIO()
    oplog.setup("info", "json", stream=out)
    yield out
    logging.getLogger().handlers.clear()
    logging.captureWarnings(False)
    structlog.reset_defaults()


def lines(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def test_config_with_keys_logged_without_secrets(captured: io.StringIO) -> None:
    cfg = dump(load())
    # what a careless caller might log: the config plus the credentials it was started with
    cfg["alpaca"]["api_key"] = API_KEY
    cfg["alpaca"]["credentials"] = {"key_id": API_KEY, "secret_key": API_SECRET}
    cfg["alerts"]["channels"] = [{"name": "ops", "password": "hunter2-long", "url": WEBHOOK}]
    oplog.register_secret(WEBHOOK)
    log = structlog.get_logger("algobotd.test")
    log.info("config loaded", config=cfg, api_secret=API_SECRET)
    log.warning(f"connecting with key {API_KEY}")  # a secret inside free text
    try:
        raise RuntimeError(f"auth failed for {API_SECRET}")
    except RuntimeError:
        log.exception("broker error")
    text = captured.getvalue()
    for secret in (API_KEY, API_SECRET, WEBHOOK, "hunter2-long"):
        assert secret not in text
    records = lines(captured)
    assert [r["event"] for r in records][:2] == ["config loaded", "connecting with key ***"]
    assert records[0]["config"]["alpaca"]["credentials"] == "***"
    assert records[0]["config"]["alpaca"]["api_key"] == "***"
    assert records[0]["config"]["feed"]["kind"] == "sim"  # ordinary values untouched
    assert "***" in records[2]["exception"]


def test_stdlib_loggers_go_through_the_same_json_pipeline(captured: io.StringIO) -> None:
    logging.getLogger("ib_async.client").warning("login as %s failed", API_KEY)
    logging.getLogger("asyncio").error("Task was destroyed but it is pending!")
    logging.getLogger("apscheduler.scheduler").info("Added job")  # quietened to warnings
    warnings.warn("deprecated thing", DeprecationWarning, stacklevel=1)
    recs = lines(captured)
    by_logger = {r["logger"]: r for r in recs}
    assert by_logger["ib_async.client"] == {**by_logger["ib_async.client"], "event": "login as *** failed",
                                            "level": "warning"}
    assert by_logger["asyncio"]["level"] == "error" and "timestamp" in by_logger["asyncio"]
    assert "apscheduler.scheduler" not in by_logger
    assert "py.warnings" in by_logger


def test_json_under_journald_or_pipe_console_on_a_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = os.openpty()
    tty = os.fdopen(slave, "w")
    try:
        monkeypatch.setattr(sys, "stdout", tty)
        monkeypatch.delenv("JOURNAL_STREAM", raising=False)
        assert oplog.use_json("auto") is False  # a person at a terminal
        monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
        assert oplog.use_json("auto") is True  # systemd's journal, even on a tty
        monkeypatch.delenv("JOURNAL_STREAM")
        monkeypatch.setattr(sys, "stdout", io.StringIO())
        assert oplog.use_json("auto") is True  # piped
        assert oplog.use_json("console") is False and oplog.use_json("json") is True
    finally:
        tty.close()
        os.close(master)
