"""``algobotd check-broker`` with broker.kind = feed.kind = "ib", against the fake TWS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from algobotd.brokers.check import check_broker
from algobotd.config import Config, load
from tests.brokers.ib_fake import FakeTWS

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def tws() -> AsyncIterator[FakeTWS]:
    fake = await FakeTWS().start()
    yield fake
    await fake.stop()


def config(tmp_path: Path, port: int, symbols: str = '["AAPL", "MSFT"]') -> Config:
    return load(None, ['feed.kind="ib"', 'broker.kind="ib"', f"feed.symbols={symbols}", f"ib.port={port}",
                       "ib.timeout_seconds=2.0", "ib.history_timeout_seconds=1.0"], state_dir=str(tmp_path))


async def test_check_broker_ok(tmp_path: Path, tws: FakeTWS) -> None:
    tws.positions["AAPL"] = (5.0, 100.0)
    tws.history = lambda *a: [(1_700_000_000, 1, 2, 0.5, 1.5, 10)]
    lines: list[str] = []
    assert await check_broker(config(tmp_path, tws.port), lines.append) == 0, lines
    text = "\n".join(lines)
    assert "DU1234567" in text and "buying power 4,000,000.00" in text and "AAPL +5" in text
    assert "AAPL: ok" in text and lines[-1] == "OK"


async def test_check_broker_reports_missing_symbol_and_data(tmp_path: Path, tws: FakeTWS) -> None:
    tws.unknown_symbols.add("NOPE")
    tws.history = lambda sym, *a: 354 if sym == "MSFT" else [(1_700_000_000, 1, 2, 0.5, 1.5, 10)]  # type: ignore[return-value]
    lines: list[str] = []
    assert await check_broker(config(tmp_path, tws.port, '["AAPL", "MSFT", "NOPE"]'), lines.append) == 1
    text = "\n".join(lines)
    assert "NOPE: unknown at IB" in text and "MSFT: no market data (IB error 354" in text


async def test_check_broker_unreachable(tmp_path: Path) -> None:
    lines: list[str] = []
    assert await check_broker(config(tmp_path, 1), lines.append) == 69
    assert any("connect_refused" in ln for ln in lines)
