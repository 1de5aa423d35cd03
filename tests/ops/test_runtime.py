"""Operations wired to a real assembled engine: daily reset, event alerts, status, reload merge."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from algobotd.assembly import assemble, warm_up
from algobotd.config import ConfigError, load
from algobotd.ops.runtime import Operations, merge_reload
from algobotd.store.writer import StoreWriter


async def test_session_open_resets_daily_baseline_and_status_is_json(tmp_path: Path) -> None:
    overrides = ["feed.sim.symbols=4", "feed.sim.speed=\"max\"", "feed.warmup_bars=60",
                 'alerts.channels=[{name="hook", kind="webhook", url="http://127.0.0.1:9"}]',
                 'alerts.routes=[{kinds=["fill"], channels=["hook"]}]']
    cfg = load(overrides=overrides, state_dir=str(tmp_path))
    store = StoreWriter(tmp_path / "rt.duckdb")
    a = assemble(cfg, store)
    await a.broker.connect()
    await warm_up(a)
    sources = iter([load(overrides=[*overrides, "risk.daily_loss_pct=0.2"], state_dir=str(tmp_path))])

    def next_config():
        try:
            return next(sources)
        except StopIteration:
            raise ConfigError("risk.daily_loss_pct", "must be between 0 and 1, got 7") from None

    ops = Operations(cfg, a, reload_config=next_config, env={})
    await ops.start()
    try:
        a.engine.day_start_equity = 1.0  # yesterday's baseline
        result = await ops.scheduler.run_now("session_open")
        assert result == {"day_start_equity": a.engine.portfolio.equity} and a.engine.day_start_equity > 1.0
        assert a.engine.events[-1]["kind"] == "session"
        await store.flush()
        rows = await store.run(lambda con: con.execute("SELECT kind FROM alerts WHERE channel = ''").fetchall())
        kinds = [k for (k,) in rows]
        assert kinds == ["session"]  # the engine event became one outbox row
        status = json.loads(json.dumps(ops.status()))  # what the control socket sends
        jobs = {j["id"]: j for j in status["jobs"]}
        assert jobs["session_open"]["last_result"]["day_start_equity"] > 1.0
        assert status["entries_allowed"] is True  # simulated feed: gate_entries = "auto" does not gate
        assert await ops.reconcile() == "nothing to reconcile: the paper venue's book is our own store"

        ok = await ops.reload()
        assert ok == {"ok": True, "applied": ["risk"], "restart_required": []}
        assert a.engine.cfg.risk.daily_loss_pct == 0.2 and a.engine.risk.breakers.cfg.daily_loss_pct == 0.2
        bad = await ops.reload()
        assert bad["ok"] is False and "risk.daily_loss_pct" in bad["error"]
        assert a.engine.cfg.risk.daily_loss_pct == 0.2  # the last good config stays
    finally:
        await ops.close()
        await a.feed.close()
        await a.broker.close()
        await store.close()


def test_merge_reload_keeps_start_up_sections() -> None:
    old = load()
    new = dataclasses.replace(load(overrides=["risk.max_position_pct=0.05", "feed.bar_seconds=300"]))
    merged, applied, restart = merge_reload(old, new)
    assert applied == ["risk"] and restart == ["feed"]
    assert merged.risk.max_position_pct == 0.05 and merged.feed.bar_seconds == old.feed.bar_seconds


def test_unknown_calendar_is_a_config_error(tmp_path: Path) -> None:
    from algobotd.ops.runtime import calendar_for

    with pytest.raises(ConfigError, match="schedule.calendar"):
        calendar_for(load(overrides=['schedule.calendar="MOON"']))
