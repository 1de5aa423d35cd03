"""Scheduler against the real XNYS calendar: holiday, early close, weekend (time injected)."""

from __future__ import annotations

import asyncio
import datetime as dt
from functools import cache

import pytest

from algobotd.config import ScheduleConfig
from algobotd.ops.scheduler import Hooks, MarketCalendar, Scheduler, SessionTrigger, entry_gate

UTC = dt.UTC


@cache
def xnys() -> MarketCalendar:
    return MarketCalendar("XNYS")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def ns(text: str) -> int:
    return int(at(text).timestamp()) * 1_000_000_000


def test_calendar_knows_holidays_early_closes_and_weekends() -> None:
    cal = xnys()
    assert not cal.is_session(dt.date(2024, 7, 4))  # Independence Day
    assert not cal.is_session(dt.date(2024, 7, 6))  # Saturday
    assert cal.is_early_close(dt.date(2024, 7, 3)) and not cal.is_early_close(dt.date(2024, 7, 5))
    assert cal.session_bounds(dt.date(2024, 7, 3)) == (at("2024-07-03T13:30"), at("2024-07-03T17:00"))
    assert cal.session_bounds(dt.date(2024, 12, 25)) is None
    with pytest.raises(ValueError, match="unknown market calendar"):
        MarketCalendar("NOPE")


def test_entries_gated_to_the_session_including_early_close() -> None:
    allowed = entry_gate(ScheduleConfig(gate_entries="on"), xnys(), live=False)
    assert allowed(ns("2024-07-03T16:59"))  # early-close day, before 13:00 ET
    assert not allowed(ns("2024-07-03T17:01"))  # after the early close
    assert not allowed(ns("2024-07-04T15:00"))  # holiday, mid-day
    assert not allowed(ns("2024-07-06T15:00"))  # Saturday
    assert not allowed(ns("2024-07-05T13:29"))  # a minute before the open
    assert allowed(ns("2024-07-05T13:30")) and allowed(ns("2024-07-05T19:59"))
    assert not allowed(ns("2024-07-05T20:00"))  # the close itself: no new entries
    outside_ok = entry_gate(ScheduleConfig(gate_entries="on", entries_outside_session=True), xnys(), live=False)
    assert outside_ok(ns("2024-07-06T15:00"))
    auto_sim = entry_gate(ScheduleConfig(), xnys(), live=False)
    assert auto_sim(ns("2024-07-06T15:00"))  # "auto" gates live feeds only
    assert not entry_gate(ScheduleConfig(), xnys(), live=True)(ns("2024-07-06T15:00"))


def test_session_triggers_skip_holidays_and_weekends() -> None:
    cal = xnys()
    open_t = SessionTrigger(cal, "open")
    retrain = SessionTrigger(cal, "close", dt.timedelta(minutes=30))
    warmup = SessionTrigger(cal, "open", -dt.timedelta(minutes=15))
    # after the early close on 3 July: the next open skips the 4th (holiday)
    assert open_t.get_next_fire_time(None, at("2024-07-03T18:00")) == at("2024-07-05T13:30")
    # nightly retrain on the early-close day is 30 min after 13:00 ET, not after 16:00
    assert retrain.get_next_fire_time(None, at("2024-07-03T12:00")) == at("2024-07-03T17:30")
    # none on the holiday or the weekend: Friday's, then Monday's
    assert retrain.get_next_fire_time(None, at("2024-07-03T18:00")) == at("2024-07-05T20:30")
    assert retrain.get_next_fire_time(at("2024-07-05T20:30"), at("2024-07-05T20:30")) == at("2024-07-08T20:30")
    assert warmup.get_next_fire_time(None, at("2024-07-06T12:00")) == at("2024-07-08T13:15")
    # winter time: the open is 14:30 UTC
    assert open_t.get_next_fire_time(None, at("2024-12-24T20:00")) == at("2024-12-26T14:30")


async def test_scheduler_jobs_run_and_report_status() -> None:
    calls: list[str] = []

    def hook(name: str, result=None, fail: bool = False):
        async def run():
            calls.append(name)
            if fail:
                raise RuntimeError("venue unreachable")
            return result
        return run

    hooks = Hooks(session_open=hook("open", {"reset": True}), session_close=hook("close"), pre_open=hook("warm"),
                  nightly_retrain=hook("retrain"), reconcile=hook("reconcile", fail=True), monitor=hook("monitor", 3))
    sched = Scheduler(ScheduleConfig(), hooks, xnys())
    sched.start()  # inside the running loop
    try:
        jobs = {j["id"]: j for j in sched.status()}
        assert set(jobs) == {"session_open", "session_close", "pre_open", "nightly_retrain", "reconcile", "monitor"}
        next_open = dt.datetime.fromisoformat(jobs["session_open"]["next_run"])
        assert (next_open.hour, next_open.minute) in ((13, 30), (14, 30)) and next_open.weekday() < 5
        assert await sched.run_now("session_open") == {"reset": True}
        await sched.run_now("reconcile")  # a failing job is recorded, not raised
        jobs = {j["id"]: j for j in sched.status()}
        assert jobs["session_open"]["last_result"] == {"reset": True} and jobs["session_open"]["runs"] == 1
        assert jobs["reconcile"]["last_error"] == "RuntimeError: venue unreachable"
        sched.reschedule(ScheduleConfig(monitor_seconds=7.0))
        job = sched._sched.get_job("monitor")
        assert job.trigger.interval == dt.timedelta(seconds=7)
        assert calls == ["open", "reconcile"]
        await asyncio.sleep(0)
    finally:
        sched.shutdown()
