"""Market calendar and the daemon's scheduled jobs.

:class:`MarketCalendar` wraps ``exchange_calendars`` (XNYS by default: sessions, holidays,
early closes) as two sorted arrays of session opens/closes, so the per-batch question
"may we open new positions now?" is one ``searchsorted``.

:class:`Scheduler` owns an APScheduler 3 ``AsyncIOScheduler`` created inside the running
loop. Session-anchored jobs use :class:`SessionTrigger` (next open/close + offset, session
days only, early closes honoured); periodic jobs use interval triggers. Every job records its
last run, result and error for ``status``. Jobs are coroutines on the event loop: anything
heavy inside them (training) must hand off to a process pool itself.
"""

from __future__ import annotations

import datetime as dt
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from algobotd.config import ScheduleConfig

log = structlog.get_logger(__name__)

UTC = dt.UTC


def _ns(t: dt.datetime) -> int:
    return int(t.timestamp() * 1_000_000) * 1000


def _dt(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=UTC)


def _utc_ns(series: pd.Series) -> np.ndarray:
    if series.dt.tz is not None:
        series = series.dt.tz_convert(None)
    return series.to_numpy().astype("datetime64[ns]").view(np.int64)


class MarketCalendar:
    def __init__(self, name: str = "XNYS") -> None:
        try:
            with warnings.catch_warnings():  # exchange_calendars vs newer pandas: deprecation noise only
                warnings.simplefilter("ignore")
                cal = xcals.get_calendar(name)
        except xcals.errors.InvalidCalendarName as exc:
            raise ValueError(f"unknown market calendar {name!r}") from exc
        self.name = name
        self.sessions = [ts.date() for ts in cal.sessions]
        self._days = np.array(self.sessions, dtype="datetime64[D]")
        self.opens = _utc_ns(cal.opens)
        self.closes = _utc_ns(cal.closes)
        early = {ts.date() for ts in cal.early_closes}
        self.early = np.array([d in early for d in self.sessions])

    def _session_index(self, ts_ns: int) -> int:
        """Index of the last session that opened at or before ``ts_ns`` (-1 if none)."""
        return int(np.searchsorted(self.opens, ts_ns, side="right")) - 1

    def is_open(self, ts_ns: int) -> bool:
        i = self._session_index(ts_ns)
        return bool(i >= 0 and ts_ns < self.closes[i])  # a numpy bool would not encode as JSON

    def _day_index(self, day: dt.date) -> int | None:
        i = int(np.searchsorted(self._days, np.datetime64(day, "D")))
        return i if i < len(self.sessions) and self.sessions[i] == day else None

    def is_session(self, day: dt.date) -> bool:
        return self._day_index(day) is not None

    def session_bounds(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """(open, close) in UTC for a session day; None on weekends and holidays."""
        i = self._day_index(day)
        if i is None:
            return None
        return _dt(int(self.opens[i])), _dt(int(self.closes[i]))

    def is_early_close(self, day: dt.date) -> bool:
        i = self._day_index(day)
        return i is not None and bool(self.early[i])

    def next_event(self, anchor: str, after_ns: int, offset_ns: int = 0) -> int | None:
        """First session ``anchor`` ("open" | "close") + offset strictly after ``after_ns``."""
        times = (self.opens if anchor == "open" else self.closes) + offset_ns
        i = int(np.searchsorted(times, after_ns, side="right"))
        return int(times[i]) if i < len(times) else None


class SessionTrigger(BaseTrigger):
    """Fires at every session's open or close plus an offset (negative = before)."""

    def __init__(self, calendar: MarketCalendar, anchor: str, offset: dt.timedelta = dt.timedelta(0)) -> None:
        if anchor not in ("open", "close"):
            raise ValueError(f"anchor must be 'open' or 'close', got {anchor!r}")
        self.calendar = calendar
        self.anchor = anchor
        self.offset_ns = int(offset.total_seconds() * 1e9)

    def get_next_fire_time(self, previous_fire_time: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
        after = _ns(now) - 1  # "now" itself may be a fire time (APScheduler asks at that instant)
        if previous_fire_time is not None:
            after = max(after, _ns(previous_fire_time))
        nxt = self.calendar.next_event(self.anchor, after, self.offset_ns)
        return _dt(nxt) if nxt is not None else None

    def __str__(self) -> str:
        return f"session {self.anchor}{self.offset_ns / 60e9:+g}min"


Job = Callable[[], Awaitable[Any]]


@dataclass
class JobRecord:
    job_id: str
    description: str
    last_run: float | None = None
    last_result: Any = None
    last_error: str | None = None
    runs: int = 0


@dataclass
class Hooks:
    """What the scheduled jobs do; the daemon's ops runtime supplies these."""

    session_open: Job  # daily reset (daily-loss baseline, breaker) at the session start
    session_close: Job
    pre_open: Job  # warm-up before the open
    nightly_retrain: Job  # after the close, session days only
    reconcile: Job
    monitor: Job


def entry_gate(cfg: ScheduleConfig, calendar: MarketCalendar | None, live: bool) -> Callable[[int], bool]:
    """The engine-facing "may new entries be opened at ts" predicate (exits are always allowed)."""
    gate = cfg.gate_entries == "on" or (cfg.gate_entries == "auto" and live)
    if not gate or cfg.entries_outside_session or calendar is None:
        return lambda ts_ns: True
    return calendar.is_open


class Scheduler:
    def __init__(self, cfg: ScheduleConfig, hooks: Hooks, calendar: MarketCalendar) -> None:
        self.cfg = cfg
        self.hooks = hooks
        self.calendar = calendar
        self.records: dict[str, JobRecord] = {}
        self._sched: AsyncIOScheduler | None = None

    def start(self) -> None:
        """Call from inside the running loop: the scheduler binds to it."""
        import asyncio

        self._sched = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC,
                                       job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300})
        self._add_jobs()
        self._sched.start()
        log.info("scheduler started", calendar=self.calendar.name, jobs=len(self.records))

    def _specs(self) -> list[tuple[str, str, Job, BaseTrigger]]:
        c, cal = self.cfg, self.calendar
        return [
            ("session_open", "daily reset at the session start", self.hooks.session_open, SessionTrigger(cal, "open")),
            ("session_close", "session end", self.hooks.session_close, SessionTrigger(cal, "close")),
            ("pre_open", "pre-open warm-up", self.hooks.pre_open,
             SessionTrigger(cal, "open", -dt.timedelta(minutes=c.warmup_minutes_before_open))),
            ("nightly_retrain", "retraining after the close", self.hooks.nightly_retrain,
             SessionTrigger(cal, "close", dt.timedelta(minutes=c.retrain_minutes_after_close))),
            ("reconcile", "broker reconciliation", self.hooks.reconcile,
             IntervalTrigger(seconds=c.reconcile_seconds, timezone=UTC)),
            ("monitor", "model monitoring", self.hooks.monitor, IntervalTrigger(seconds=c.monitor_seconds, timezone=UTC)),
        ]

    def _add_jobs(self) -> None:
        assert self._sched is not None
        for job_id, description, fn, trigger in self._specs():
            self.records.setdefault(job_id, JobRecord(job_id, description))
            self._sched.add_job(self._wrap(job_id, fn), trigger, id=job_id, name=description, replace_existing=True)

    def reschedule(self, cfg: ScheduleConfig) -> None:
        """Reload: the same jobs with the new offsets and intervals."""
        self.cfg = cfg
        if self._sched is not None:
            self._add_jobs()
            log.info("schedule reloaded")

    def _wrap(self, job_id: str, fn: Job) -> Job:
        async def run() -> Any:
            return await self.run_now(job_id, fn)
        return run

    async def run_now(self, job_id: str, fn: Job | None = None) -> Any:
        """Run a job immediately (also what the triggers call); the result lands in ``status``."""
        rec = self.records.setdefault(job_id, JobRecord(job_id, job_id))
        fn = fn or dict((s[0], s[2]) for s in self._specs())[job_id]
        rec.last_run, rec.runs = time.time(), rec.runs + 1
        try:
            rec.last_result, rec.last_error = await fn(), None
        except Exception as exc:  # a failing job is reported, never takes the daemon down
            rec.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("scheduled job failed", job=job_id)
        return rec.last_result

    def status(self) -> list[dict[str, Any]]:
        out = []
        for job_id, rec in self.records.items():
            job = self._sched.get_job(job_id) if self._sched is not None else None
            nxt = job.next_run_time if job is not None else None
            out.append({"id": job_id, "description": rec.description,
                        "next_run": nxt.isoformat() if nxt else None,
                        "last_run": _dt(int(rec.last_run * 1e9)).isoformat() if rec.last_run else None,
                        "last_result": rec.last_result, "last_error": rec.last_error, "runs": rec.runs})
        return out

    def shutdown(self) -> None:
        if self._sched is not None and self._sched.running:
            self._sched.shutdown(wait=False)
