"""Between-bar prices reach the engine's stop checks coalesced per symbol, and a failure does not stop them."""

from __future__ import annotations

import asyncio

from algobotd.feeds.prices import PriceRelay


async def test_relay_coalesces_and_survives_errors() -> None:
    seen: list[tuple] = []

    async def handler(symbol, ts, price, bid, ask) -> None:
        if symbol == "BAD":
            raise ValueError("boom")
        seen.append((symbol, ts, price, bid, ask))

    relay = PriceRelay(handler)
    task = asyncio.create_task(relay.run())
    for i in range(100):  # a burst between two loop iterations: one check per symbol
        relay("AAA", i, None, 10.0 + i, 10.1 + i)
        relay("BAD", i, 1.0)
    relay("BBB", 7, 20.0)
    await asyncio.sleep(0.01)
    assert sorted(seen) == [("AAA", 99, None, 109.0, 109.1), ("BBB", 7, 20.0, None, None)]
    relay("AAA", 100, 50.0)  # still running after the handler raised
    await asyncio.sleep(0.01)
    assert seen[-1] == ("AAA", 100, 50.0, None, None)
    assert relay.received == 202 and relay.delivered == 3
    task.cancel()
