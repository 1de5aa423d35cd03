"""AltData supervision: a crashing source is marked down and restarted; the others go on."""

from __future__ import annotations

import asyncio

import numpy as np

from algobotd.altdata.hub import AltHub
from algobotd.altdata.runtime import AltData
from algobotd.altdata.sentiment import LexiconScorer
from algobotd.domain import News
from algobotd.features.engine import FeatureEngine
from tests.altdata.conftest import NS, T0, batch


class Broken:
    def __init__(self) -> None:
        self.starts = self.closes = 0

    async def warm(self, start_ns: int, end_ns: int) -> int:
        raise RuntimeError("history endpoint down")

    async def start(self) -> None:
        self.starts += 1
        raise ConnectionError("cannot connect")

    async def close(self) -> None:
        self.closes += 1


async def test_crashing_loop_is_restarted_and_marks_its_group_nan() -> None:
    hub = AltHub(LexiconScorer())
    hub.source("poller", "options")
    runs = 0

    async def poller() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError("chain endpoint 500")
        hub.mark_ok("poller")
        await asyncio.Event().wait()

    broken = Broken()
    alt = AltData(hub, [broken], [("poller", poller)], retry_seconds=0.01)
    await alt.warm([batch(T0)], 60 * NS)  # neither the failing start nor the failing history raises
    assert broken.starts == 1
    for _ in range(200):
        if runs >= 3:
            break
        await asyncio.sleep(0.01)
    assert runs == 3 and hub.sources["poller"].ok and hub.sources["poller"].errors == 2
    hub.mark_failed("poller", "again")
    hub.add_news([News("n1", T0 + NS, ("AAPL",), "Apple beats estimates")], "news")
    eng = FeatureEngine(symbols=("AAPL", "MSFT"))
    X = eng.update(hub.attach(batch(T0), 60 * NS))
    assert X[0, eng.names.index("news_sent")] > 0  # news is fine ...
    assert np.isnan(X[:, eng.names.index("opt_pcr")]).all()  # ... options read NaN while their source is down
    await alt.close()
    assert broken.closes == 1
