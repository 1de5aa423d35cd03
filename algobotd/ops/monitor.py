"""Model monitoring: realised returns, rolling skill per model, feature drift, retraining.

Each pass (a scheduled job, off the hot path; DuckDB work on the writer's thread):

1. :func:`fill_actuals` sets ``predictions.actual_return`` = log(close at the first bar at or
   after the horizon / close of the bar the prediction saw), once that bar exists;
2. :func:`window_metrics` cuts each model's scored predictions into windows of
   ``monitor.window_predictions`` and computes IC (Spearman), hit rate, signal Sharpe and
   drawdown of the sign-following signal per window;
3. :func:`degraded` applies the design's rule: the latest window's IC below the mean minus
   ``monitor.sigma`` standard deviations of the previous ``monitor.history_windows``;
4. :func:`psi` per feature against the training distribution (a :class:`FeatureSource`);
5. a degradation or drift beyond ``monitor.psi_threshold`` asks the :class:`RetrainController`
   for one retrain; it is single-flight, on a cooldown, and fires once per new window.

The retraining itself belongs to the model layer, behind the :class:`Retrainer` protocol: it
trains in a separate process and promotes the challenger only if it beats the champion out of
sample on recent data.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import duckdb
import numpy as np
import structlog

from algobotd.config import MonitorConfig
from algobotd.store.writer import StoreWriter

log = structlog.get_logger(__name__)

UNSCORED_DAYS = 30
BASE_LOOKBACK_DAYS = 7  # how far back the bar a prediction saw may be (weekends, halted symbols)
MIN_HISTORY = 5  # past windows needed before the degradation rule means anything
PSI_FLOOR = 1e-4  # empty bins would make PSI infinite


# --- the model layer's side -----------------------------------------------------------------------


@dataclass
class ModelCandidate:
    model_id: str
    model: Any = None
    metrics: dict[str, float] = field(default_factory=dict)  # out-of-sample, on recent data


class Retrainer(Protocol):
    """What the model layer implements; the daemon picks it up from ``engine.retrainer``
    (``engine.feature_source`` likewise for drift) and calls it from the monitor, the nightly
    job and ``algobotd ctl retrain``. Promotion (registry, swapping the live model) is its own."""

    async def retrain(self, reason: str) -> ModelCandidate:
        """Train a challenger (in another process: never on the event loop)."""

    async def promote_if_better(self, candidate: ModelCandidate) -> bool:
        """Make ``candidate`` champion only if it beats the current one out of sample on recent data."""


class FeatureSource(Protocol):
    """Samples per feature name; either method may also be a coroutine function."""

    def reference(self) -> Mapping[str, np.ndarray] | Awaitable[Mapping[str, np.ndarray]]:
        """Feature samples from the champion's training data."""

    def recent(self) -> Mapping[str, np.ndarray] | Awaitable[Mapping[str, np.ndarray]]:
        """The same features over the recent live window."""


async def _resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class StoreBarFeatures:
    """Default drift source until the model layer provides its own: the distribution of bar
    log returns in the stored bars before ``since_ns`` (what the model was warmed up / fitted on)
    against the latest bars. Scale-free on purpose: raw volume drifts with the time of day."""

    def __init__(self, store: StoreWriter, since_ns: int, rows: int = 5000) -> None:
        self.store = store
        self.since = dt.datetime.fromtimestamp(since_ns / 1e9, tz=dt.UTC).replace(tzinfo=None)
        self.rows = rows
        self._reference: dict[str, np.ndarray] | None = None

    def _returns(self, con: duckdb.DuckDBPyConnection, before: bool) -> np.ndarray:
        where = "ts <= ?" if before else "ts > ?"
        rows = con.execute(
            f"""SELECT ln(close / lag(close) OVER (PARTITION BY symbol ORDER BY ts)) FROM (
                    SELECT symbol, ts, close FROM bars WHERE {where} AND close > 0 ORDER BY ts DESC LIMIT ?)""",
            [self.since, self.rows]).fetchall()
        values = np.array([r[0] for r in rows], dtype=float)
        return values[np.isfinite(values)]

    async def reference(self) -> Mapping[str, np.ndarray]:
        if self._reference is None:  # the past does not change: read it once
            self._reference = {"bar_return": await self.store.run(lambda con: self._returns(con, True))}
        return self._reference

    async def recent(self) -> Mapping[str, np.ndarray]:
        return {"bar_return": await self.store.run(lambda con: self._returns(con, False))}


# --- realised returns -----------------------------------------------------------------------------


def fill_actuals(con: duckdb.DuckDBPyConnection, horizon_bars: int, bar_seconds: int) -> int:
    """Fill ``actual_return`` where the horizon has passed; returns the number of rows filled."""
    bar_us = bar_seconds * 1_000_000
    newest = con.execute("SELECT max(ts) FROM predictions").fetchone()[0]
    if newest is None:
        return 0
    # a prediction still unscored after a month never will be (delisted symbol): leave it, so
    # each pass reads only recent rows; bounds are computed first, as constants for the joins
    oldest = con.execute(
        "SELECT min(ts) FROM predictions WHERE (actual_return IS NULL OR isnan(actual_return)) AND ts >= ?",
        [newest - dt.timedelta(days=UNSCORED_DAYS)]).fetchone()[0]
    if oldest is None:
        return 0
    bars_from = oldest - dt.timedelta(days=BASE_LOOKBACK_DAYS)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE monitor_fill AS
            WITH p AS (
                SELECT rowid AS rid, symbol, ts - to_microseconds({bar_us}) AS seen_ts
                FROM predictions WHERE (actual_return IS NULL OR isnan(actual_return)) AND ts >= $oldest
            ), b AS (SELECT symbol, ts, close FROM bars WHERE close > 0 AND ts >= $bars_from),
            base AS (
                SELECT p.rid, p.symbol, b.ts AS base_ts, b.close AS c0
                FROM p ASOF JOIN b ON p.symbol = b.symbol AND p.seen_ts >= b.ts
            ), tgt AS (
                SELECT rid, symbol, c0, base_ts + to_microseconds({bar_us * horizon_bars}) AS target_ts FROM base
            )
            SELECT tgt.rid, ln(f.close / tgt.c0) AS r
            FROM tgt ASOF JOIN b f ON tgt.symbol = f.symbol AND tgt.target_ts <= f.ts
            """, {"oldest": oldest, "bars_from": bars_from})
        filled = con.execute("SELECT count(*) FROM monitor_fill").fetchone()[0]
        con.execute("UPDATE predictions SET actual_return = m.r FROM monitor_fill m WHERE predictions.rowid = m.rid")
        con.execute("DROP TABLE monitor_fill")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return int(filled)


# --- skill ------------------------------------------------------------------------------------------


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(len(x))
    return r


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3:
        return float("nan")
    ra, rb = _ranks(a), _ranks(b)
    sa, sb = ra.std(), rb.std()
    if sa == 0 or sb == 0:
        return 0.0
    return float(((ra - ra.mean()) * (rb - rb.mean())).mean() / (sa * sb))


def window_stats(pred: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    signal = np.sign(pred) * actual  # the return of following the prediction's sign
    sd = signal.std()
    equity = np.cumsum(signal)
    return {
        "ic": spearman(pred, actual),
        "hit_rate": float(np.mean(np.sign(pred) == np.sign(actual))),
        "sharpe": float(signal.mean() / sd * np.sqrt(len(signal))) if sd > 0 else 0.0,
        "drawdown": float(np.max(np.maximum.accumulate(np.concatenate([[0.0], equity]))[1:] - equity)),
        "n": float(len(pred)),
    }


def window_metrics(pred: np.ndarray, actual: np.ndarray, window: int) -> list[dict[str, float]]:
    """Consecutive complete windows, oldest first (a trailing partial window is not scored)."""
    k = len(pred) // window
    start = len(pred) - k * window  # align to the newest prediction
    return [window_stats(pred[start + i * window: start + (i + 1) * window],
                         actual[start + i * window: start + (i + 1) * window]) for i in range(k)]


def degraded(ics: list[float], history: int, sigma: float) -> tuple[bool, float | None]:
    """Latest IC below mean - sigma*std of up to ``history`` earlier windows; returns (flag, threshold)."""
    if len(ics) < MIN_HISTORY + 1:
        return False, None
    past = np.array(ics[-history - 1:-1])
    threshold = float(past.mean() - sigma * past.std(ddof=1))
    return bool(ics[-1] < threshold), threshold


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference`` (quantile bins of the reference)."""
    ref = reference[np.isfinite(reference)]
    cur = current[np.isfinite(current)]
    if len(ref) < bins or len(cur) == 0:
        return 0.0
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    p = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1) / len(ref)
    q = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1) / len(cur)
    p, q = np.maximum(p, PSI_FLOOR), np.maximum(q, PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


# --- retraining -----------------------------------------------------------------------------------


class RetrainController:
    """At most one retrain at a time, at most one per cooldown; results kept for status."""

    def __init__(self, retrainer: Retrainer | None, cooldown_seconds: float,
                 on_event: Callable[[str, str], None] = lambda kind, msg: None,
                 wall: Callable[[], float] = time.monotonic) -> None:
        self.retrainer = retrainer
        self.cooldown = cooldown_seconds
        self.on_event = on_event
        self.wall = wall
        self.task: asyncio.Task[None] | None = None
        self.last_started: float | None = None
        self.history: list[dict[str, Any]] = []

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def trigger(self, reason: str, force: bool = False) -> bool:
        if self.running:
            return False
        if not force and self.last_started is not None and self.wall() - self.last_started < self.cooldown:
            return False
        self.last_started = self.wall()
        if self.retrainer is None:
            self.history.append({"reason": reason, "result": "no retrainer configured"})
            self.on_event("retrain", f"retraining needed ({reason}) but no retrainer is configured")
            return False
        self.on_event("retrain", f"retraining: {reason}")
        self.task = asyncio.get_running_loop().create_task(self._run(reason), name="retrain")
        return True

    async def _run(self, reason: str) -> None:
        assert self.retrainer is not None
        entry: dict[str, Any] = {"reason": reason}
        self.history.append(entry)
        try:
            candidate = await self.retrainer.retrain(reason)
            entry.update(candidate=candidate.model_id, metrics=candidate.metrics)
            entry["promoted"] = bool(await self.retrainer.promote_if_better(candidate))
            self.on_event("retrain", f"challenger {candidate.model_id} "
                                     f"{'promoted' if entry['promoted'] else 'not promoted'}")
        except Exception as exc:  # a failed training run is reported, trading goes on
            entry["error"] = f"{type(exc).__name__}: {exc}"
            log.exception("retrain failed", reason=reason)

    async def wait(self) -> None:
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


# --- the monitor ----------------------------------------------------------------------------------


class Monitor:
    def __init__(self, store: StoreWriter, cfg: MonitorConfig, bar_seconds: int, controller: RetrainController,
                 features: FeatureSource | None = None) -> None:
        self.store = store
        self.cfg = cfg
        self.bar_seconds = bar_seconds
        self.controller = controller
        self.features = features
        self.models: dict[str, dict[str, Any]] = {}
        self.drift: dict[str, float] = {}
        self.drifted: list[str] = []
        self.filled = 0
        self._triggered_windows: dict[str, int] = {}  # model -> window count that already triggered

    def configure(self, cfg: MonitorConfig) -> None:
        self.cfg = cfg
        self.controller.cooldown = cfg.retrain_cooldown_seconds

    def _load(self, con: duckdb.DuckDBPyConnection) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        keep = (self.cfg.history_windows + 1) * self.cfg.window_predictions
        rows = con.execute(
            """SELECT model_id, prediction, actual_return FROM (
                   SELECT model_id, ts, symbol, prediction, actual_return,
                          row_number() OVER (PARTITION BY model_id ORDER BY ts DESC, symbol DESC) AS k
                   FROM predictions WHERE actual_return IS NOT NULL AND NOT isnan(actual_return)
                     AND prediction IS NOT NULL AND NOT isnan(prediction))
               WHERE k <= ? ORDER BY model_id, ts, symbol""", [keep]).fetchall()
        out: dict[str, tuple[list[float], list[float]]] = {}
        for model_id, p, a in rows:
            lists = out.setdefault(model_id, ([], []))
            lists[0].append(p)
            lists[1].append(a)
        return {m: (np.array(p), np.array(a)) for m, (p, a) in out.items()}

    async def run_once(self) -> dict[str, Any]:
        cfg = self.cfg
        self.filled += await self.store.run(lambda con: fill_actuals(con, cfg.horizon_bars, self.bar_seconds))
        data = await self.store.run(self._load)
        reasons: list[str] = []
        for model_id, (pred, actual) in data.items():
            windows = window_metrics(pred, actual, cfg.window_predictions)
            ics = [w["ic"] for w in windows if np.isfinite(w["ic"])]
            flag, threshold = degraded(ics, cfg.history_windows, cfg.sigma)
            self.models[model_id] = {"windows": len(windows), "latest": windows[-1] if windows else None,
                                     "ic_threshold": threshold, "degraded": flag}
            # one trigger per new window: the same bad window seen again is not a new reason
            if flag and self._triggered_windows.get(model_id) != len(windows):
                self._triggered_windows[model_id] = len(windows)
                reasons.append(f"{model_id}: IC {ics[-1]:.3f} below {threshold:.3f}")
        if self.features is not None:
            ref = await _resolve(self.features.reference())
            cur = await _resolve(self.features.recent())
            self.drift = {name: psi(ref[name], cur[name], cfg.psi_bins) for name in ref if name in cur}
            drifted = {k: v for k, v in self.drift.items() if v > cfg.psi_threshold}
            self.drifted = sorted(drifted)
            if drifted:
                reasons.append("feature drift " + ", ".join(f"{k} PSI {v:.2f}" for k, v in sorted(drifted.items())))
        triggered = self.controller.trigger("; ".join(reasons)) if reasons else False
        return {"filled": self.filled, "models": len(self.models), "retrain_triggered": triggered}

    def status(self) -> dict[str, Any]:
        return {"models": self.models, "drift": self.drift, "drifted": self.drifted, "actuals_filled": self.filled,
                "retraining": self.controller.running, "retrains": self.controller.history[-10:]}
