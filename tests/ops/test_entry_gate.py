"""The engine honours the scheduler's entry gate: outside the session only orders that shrink a position."""

from __future__ import annotations

from pathlib import Path

from algobotd.assembly import assemble, warm_up
from algobotd.config import load
from algobotd.store.writer import StoreWriter


async def test_closed_gate_allows_exits_only(tmp_path: Path) -> None:
    cfg = load(overrides=["feed.sim.symbols=8", "feed.sim.speed=\"max\"", "feed.warmup_bars=80"],
               state_dir=str(tmp_path))
    store = StoreWriter(tmp_path / "gate.duckdb", durable=False)
    a = assemble(cfg, store)
    await a.broker.connect()
    await warm_up(a)
    e = a.engine
    sent: list[tuple[str, int, int]] = []  # (symbol, signed qty, position when sent)
    original_send = e.send

    async def recording_send(orders):
        for o in orders:
            pos = e.portfolio.position(o.symbol)
            sent.append((o.symbol, o.side.sign * o.qty, pos.qty if pos else 0))
        await original_send(orders)

    e.send = recording_send  # type: ignore[method-assign]
    e.entry_gate = lambda ts_ns: False  # "outside the session"
    batches = a.feed.batches(None)
    n = 0
    async for batch in batches:
        await e.process(batch)
        n += 1
        if n == 60:
            break
    assert sent == [] and not e.portfolio.positions()  # flat and gated: nothing at all
    e.entry_gate = lambda ts_ns: True
    async for batch in batches:
        await e.process(batch)
        if e.portfolio.positions():
            break
    assert e.portfolio.positions(), "with the gate open the strategy trades"
    sent.clear()
    e.entry_gate = lambda ts_ns: False
    n = 0
    async for batch in batches:
        await e.process(batch)
        n += 1
        if n == 300:
            break
    assert sent, "exits still go out while gated (deterministic: the simulator is seeded)"
    # every order sent while gated reduces an existing position without flipping it
    assert all(pos != 0 and (qty > 0) != (pos > 0) and abs(qty) <= abs(pos) for _, qty, pos in sent), sent
    await a.feed.close()
    await a.broker.close()
    await store.close()
