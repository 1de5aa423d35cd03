"""The embedded simulated market (``feed.kind = "sim"``).

Model, per trading day ``d`` (0 = first session on or after ``feed.sim.start``):

- a regime (bull, bear, sideways, crash, recovery) from a sticky daily Markov chain;
- a market factor with the regime's drift/vol; symbol log returns are
  ``beta_i * market + idiosyncratic``; SPY follows the market factor and VIX is
  ``100 * regime vol`` plus mean-reverting noise that rises when the market falls;
- each bar is built from a few sub-steps so the OHLC are consistent by construction,
  with an intraday U-shape in vol and volume and a small overnight gap at the open.

Everything is a function of time: the draws of day ``d`` come from generators seeded
with ``(seed, stream, d)`` only, and the regime of day ``d`` from iterating the small
Markov chain alone. Prices are relative within a day, so a resumed daemon continues
from its stored closes and reproduces the uninterrupted run (see ``ResumePoint``).
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import math
import threading
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from algobotd.config import FeedConfig
from algobotd.domain import NS_PER_SECOND, BarBatch, News
from algobotd.feeds.base import ResumePoint
from algobotd.feeds.pacing import Pacer
from algobotd.feeds.sim_flow import SimFlow

NEW_YORK = ZoneInfo("America/New_York")
SESSION_SECONDS = 23_400  # 09:30-16:00

REGIMES = ("bull", "bear", "sideways", "crash", "recovery")
REGIME_DRIFT = np.array([0.12, -0.20, 0.02, -0.50, 0.30])  # annualised
REGIME_VOL = np.array([0.15, 0.35, 0.12, 0.60, 0.25])
# Daily transitions: sticky; a crash lasts ~2.5 days and is usually followed by recovery.
REGIME_TRANSITIONS = np.array([
    # bull   bear   side   crash  recov
    [0.970, 0.010, 0.015, 0.005, 0.000],  # bull
    [0.010, 0.950, 0.020, 0.015, 0.005],  # bear
    [0.020, 0.010, 0.960, 0.005, 0.005],  # sideways
    [0.000, 0.100, 0.000, 0.600, 0.300],  # crash
    [0.060, 0.010, 0.020, 0.005, 0.905],  # recovery
])

_SUBSTEPS = 4  # path points per bar: enough for realistic high/low, cheap to draw
_GAP_SD = 0.25 / math.sqrt(252)  # overnight gap sd as a fraction of annual vol
_SPY_START = 470.0
# Stream tags keep the generators of different purposes independent of each other.
_TAG_SYMBOL, _TAG_REGIME, _TAG_MARKET, _TAG_DAY = 1, 2, 3, 4
_DAY_OFFSET = 1 << 40  # SeedSequence wants non-negative entropy; history days are negative
_MASK64 = (1 << 64) - 1
_GOOD = ("{s} beats expectations", "{s} raises guidance", "Analysts upgrade {s}")
_BAD = ("{s} misses estimates", "{s} cuts outlook", "Regulator probes {s}")
_FLAT = ("{s} announces executive change", "{s} to present at conference", "{s} files quarterly report")


def _cumrows(m: np.ndarray) -> list[list[float]]:
    cum = np.cumsum(m, axis=1)
    cum[:, -1] = 1.0  # rounding must never let a uniform fall off the end of a row
    return cum.tolist()


class RegimeChain:
    """Regime index per day, forward from day 0 and backward (history) via the
    time-reversed chain. Day 0 is drawn from the stationary law, so both directions
    are one stationary process and no prices are needed to know a day's regime."""

    _BLOCK = 256

    def __init__(self, seed: int) -> None:
        p = REGIME_TRANSITIONS
        a = np.vstack([p.T - np.eye(len(p)), np.ones(len(p))])
        pi = np.linalg.lstsq(a, np.r_[np.zeros(len(p)), 1.0], rcond=None)[0]
        reverse = pi[None, :] * p.T / pi[:, None]
        self._cum = (_cumrows(p), _cumrows(reverse))
        self._rng = tuple(np.random.Generator(np.random.PCG64([seed, _TAG_REGIME, i])) for i in (0, 1))
        first = min(bisect.bisect_right(_cumrows(pi[None, :])[0], self._rng[0].random()), len(p) - 1)
        self._seq: tuple[list[int], list[int]] = ([first], [first])  # days 0,1,2.. and 0,-1,-2..
        self._lock = threading.Lock()  # big days are drawn in a worker thread (see SimFeed._warm)

    def __call__(self, day: int) -> int:
        way = 0 if day >= 0 else 1
        seq, cum, last = self._seq[way], self._cum[way], len(REGIMES) - 1
        if len(seq) <= abs(day):
            with self._lock:  # two extenders at once would interleave blocks: no longer deterministic
                while len(seq) <= abs(day):
                    cur = seq[-1]
                    for u in self._rng[way].random(self._BLOCK).tolist():
                        cur = min(bisect.bisect_right(cum[cur], u), last)
                        seq.append(cur)
        return seq[abs(day)]


@dataclass(slots=True)
class _Day:
    """One session's draws; prices are log levels relative to the previous day's close."""

    ts: list[int]
    o: np.ndarray  # (B, n)
    h: np.ndarray
    l: np.ndarray
    c: np.ndarray
    volume: np.ndarray
    half_spread: np.ndarray  # log units, before the one-cent floor (which needs the price)
    mkt: np.ndarray  # (B,) SPY log close relative to the previous close
    vix: np.ndarray  # (B,)
    news: dict[int, list[News]]


class SimFeed:
    """Synthetic correlated market implementing the ``Feed`` protocol.

    ``max_bars`` (optional) ends ``batches()`` after that many live batches, for backtests.
    """

    def __init__(self, feed: FeedConfig, max_bars: int | None = None) -> None:
        cfg = feed.sim
        self._cfg = cfg
        self.bar_seconds: int = feed.bar_seconds
        self.max_bars = max_bars
        if feed.symbols:
            self.symbols: tuple[str, ...] = tuple(feed.symbols)
        else:
            width = max(2, len(str(cfg.symbols - 1)))
            self.symbols = tuple(f"SIM{i:0{width}d}" for i in range(cfg.symbols))
        self.seed = cfg.seed & _MASK64
        self.bars_per_day = max(1, SESSION_SECONDS // self.bar_seconds)
        self._bar_ns = self.bar_seconds * NS_PER_SECOND
        self._dt = min(self.bar_seconds, SESSION_SECONDS) / (252 * SESSION_SECONDS)
        self._regimes = RegimeChain(self.seed)
        self._d0 = np.busday_offset(np.datetime64(cfg.start, "D"), 0, roll="forward")
        self._opens: dict[int, int] = {}
        self._days: dict[int, _Day] = {}
        self._spy_prev: tuple[list[float], list[float]] = ([_SPY_START], [_SPY_START])
        self._lock = threading.RLock()  # guards the caches against a _warm() worker thread
        self._closed = False
        self._pacer: Pacer | None = None
        self._init_symbol_params()
        self._init_intraday_shapes()
        self._flow = SimFlow(self.seed, self.symbols, self.daily_volume,
                             np.sqrt((self.beta * REGIME_VOL[0]) ** 2 + self.idio_vol**2),
                             self.bars_per_day) if cfg.flow else None

    # --- static parameters ------------------------------------------------------------------

    def _init_symbol_params(self) -> None:
        # Seeded by (seed, crc32(name)): a symbol keeps its character when the universe changes.
        u = np.empty((len(self.symbols), 6))
        for i, s in enumerate(self.symbols):
            g = np.random.Generator(np.random.PCG64([self.seed, _TAG_SYMBOL, zlib.crc32(s.encode())]))
            u[i, :5] = g.random(5)
            u[i, 5] = g.standard_normal()
        self.beta = 0.6 + 0.8 * u[:, 0]
        self.idio_vol = 0.10 + 0.25 * u[:, 1]
        self.start_levels = np.exp(np.log(20.0) + u[:, 2] * np.log(400.0 / 20.0))
        self.spread_bps = 1.0 + 9.0 * u[:, 3]
        self.daily_volume = np.exp(np.log(2e6) + 1.0 * u[:, 5])  # lognormal around 2M shares

    def _init_intraday_shapes(self) -> None:
        x = 2.0 * (np.arange(self.bars_per_day) + 0.5) / self.bars_per_day - 1.0
        w = np.sqrt(0.7 + 0.9 * x * x)
        self._vol_shape = w / np.sqrt(np.mean(w * w))  # mean variance 1 over the session
        v = 0.6 + 2.4 * x * x
        self._volume_shape = v / v.mean()
        self._vix_phi = 0.5 ** (self.bar_seconds / 3600.0)  # VIX noise half-life: one hour

    # --- calendar -----------------------------------------------------------------------------

    def _open_ns(self, day: int) -> int:
        ns = self._opens.get(day)
        if ns is None:
            date = np.busday_offset(self._d0, day).astype(dt.date)
            ns = int(dt.datetime.combine(date, dt.time(9, 30), NEW_YORK).timestamp()) * NS_PER_SECOND
            self._opens[day] = ns
        return ns

    def bar_ts(self, k: int) -> int:
        """Start of absolute bar ``k`` (0 = first bar of the start day; negative = history)."""
        d, j = divmod(k, self.bars_per_day)
        return self._open_ns(d) + j * self._bar_ns

    def bar_after(self, ts: int) -> int:
        """Absolute index of the first bar starting strictly after ``ts``."""
        local = dt.datetime.fromtimestamp(ts // NS_PER_SECOND, NEW_YORK).date()
        day64 = np.datetime64(local, "D")
        d = int(np.busday_count(self._d0, day64))  # for a non-trading date: the next session
        if np.is_busday(day64) and ts >= self._open_ns(d):
            j = (ts - self._open_ns(d)) // self._bar_ns + 1
            return d * self.bars_per_day + min(j, self.bars_per_day)
        return d * self.bars_per_day

    def regime(self, day: int) -> str:
        return REGIMES[self._regimes(day)]

    def regime_at(self, ts: int) -> str:
        return self.regime((self.bar_after(ts) - 1) // self.bars_per_day)

    # --- generation ---------------------------------------------------------------------------

    def _market(self, day: int) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
        """Market factor for ``day``: sub-step log returns (B, S), overnight gap,
        standardised bar shocks (B,) and the VIX noise draws (B + 1,)."""
        reg = self._regimes(day)
        mu, sig = REGIME_DRIFT[reg], REGIME_VOL[reg]
        g = np.random.Generator(np.random.PCG64([self.seed, _TAG_MARKET, day + _DAY_OFFSET]))
        z = g.standard_normal((self.bars_per_day, _SUBSTEPS))
        gap = float(g.standard_normal()) * sig * _GAP_SD
        h = self._dt / _SUBSTEPS
        w = self._vol_shape[:, None]
        # Ito correction so the *arithmetic* drift is the regime's annual drift.
        inc = (mu - 0.5 * sig * sig * w * w) * h + sig * math.sqrt(h) * w * z
        return inc, gap, z.sum(axis=1) / math.sqrt(_SUBSTEPS), g.standard_normal(self.bars_per_day + 1)

    def _spy_prev_close(self, day: int) -> float:
        """SPY close before ``day``: a pure function of time, independent of any resume
        (walking to it needs only the cheap market draws, never the symbols')."""
        way, step = (0, 1) if day >= 0 else (1, -1)
        seq = self._spy_prev[way]
        with self._lock:
            while len(seq) <= abs(day):
                d = len(seq) - 1 if way == 0 else -len(seq)  # the day crossed next
                inc, gap, _, _ = self._market(d)
                seq.append(seq[-1] * math.exp(step * (gap + float(inc.sum()))))
        return seq[abs(day)]

    def _day(self, day: int) -> _Day:
        with self._lock:
            cached = self._days.get(day)
            if cached is None:
                cached = self._generate_day(day)
                if len(self._days) >= 4:  # live runs move forward, history walks back: keep a few
                    self._days.pop(next(iter(self._days)))
                self._days[day] = cached
            return cached

    def _generate_day(self, day: int) -> _Day:
        B, S, n = self.bars_per_day, _SUBSTEPS, len(self.symbols)
        reg = self._regimes(day)
        sig = REGIME_VOL[reg]
        m_inc, m_gap, m_shock, vix_draws = self._market(day)
        g = np.random.Generator(np.random.PCG64([self.seed, _TAG_DAY, day + _DAY_OFFSET]))
        h = self._dt / S
        stress = math.sqrt(sig / REGIME_VOL[0])  # idio vol, spreads and volume widen with the regime
        iv = self.idio_vol * stress
        w = self._vol_shape[:, None, None]
        # All symbols x bars x sub-steps of the day in one vectorised draw.
        inc = g.standard_normal((B, S, n))
        inc *= w * (iv * math.sqrt(h))
        inc -= (0.5 * h) * (w * w) * (iv * iv)
        inc += m_inc[:, :, None] * self.beta
        gap = self.beta * m_gap + iv * _GAP_SD * g.standard_normal(n)
        path = np.cumsum(inc.reshape(B * S, n), axis=0).reshape(B, S, n)
        path += gap
        c = np.ascontiguousarray(path[:, -1, :])
        o = np.empty_like(c)
        o[0] = gap  # the first open is the previous close moved by the overnight gap
        o[1:] = c[:-1]
        hi = np.maximum(o, path.max(axis=1))
        lo = np.minimum(o, path.min(axis=1))
        # Volume and spread react to the bar's move relative to its expected size.
        sd = np.sqrt(self.beta**2 * sig**2 + iv**2) * math.sqrt(self._dt)
        r = c - o
        z = np.abs(r) / (self._vol_shape[:, None] * sd)
        noise = g.standard_normal((B, n))
        size = (self.daily_volume * (stress / B)) * self._volume_shape[:, None] * (0.6 + 0.4 * z)
        volume = np.maximum(np.rint(size * np.exp(0.25 * noise - 0.03125)), 1.0)
        half_spread = (0.5e-4 * stress) * self.spread_bps * (1.0 + 0.25 * z)
        mkt = m_gap + np.cumsum(m_inc.ravel())[S - 1 :: S]
        ts0 = self._open_ns(day)
        ts = [ts0 + j * self._bar_ns for j in range(B)]
        news = self._news(g, ts, r, sd, REGIMES[reg])
        return _Day(ts, o, hi, lo, c, volume, half_spread, mkt, self._vix(sig, m_shock, vix_draws), news)

    def _vix(self, sig: float, shock: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """100 x regime vol plus AR(1) noise; market sell-offs push it up (leverage effect)."""
        level = 100.0 * sig
        sd = 0.12 * level
        phi = self._vix_phi
        innov = ((-0.6 * shock + 0.8 * draws[1:]) * (math.sqrt(1.0 - phi * phi) * sd)).tolist()
        x = sd * float(draws[0])  # each session starts from the stationary law: no history needed
        out = []
        for e in innov:  # a scalar recursion over one day's bars only
            x = phi * x + e
            out.append(x)
        return np.maximum(level + np.asarray(out), 5.0)

    def _news(self, g: np.random.Generator, ts: list[int], r: np.ndarray, sd: np.ndarray,
              regime: str) -> dict[int, list[News]]:
        # Sentiment follows the bar's own move (news and price react together), never later bars.
        rows, cols = np.nonzero(g.random(r.shape) < self._cfg.news_rate)
        extra = g.random((len(rows), 2))
        out: dict[int, list[News]] = {}
        if len(rows) == 0:
            return out
        zr = r[rows, cols] / (self._vol_shape[rows] * sd[cols])
        sentiment = np.clip(0.8 * np.tanh(0.7 * zr) + 0.4 * (2.0 * extra[:, 1] - 1.0), -1.0, 1.0)
        for j, i, f, s in zip(rows.tolist(), cols.tolist(), extra[:, 0].tolist(), sentiment.tolist()):
            sym = self.symbols[i]
            pool = _GOOD if s > 0.25 else _BAD if s < -0.25 else _FLAT
            out.setdefault(j, []).append(News(
                id=f"sim-{self.seed}-{sym}-{ts[j]}", ts=ts[j] + int(f * self._bar_ns), symbols=(sym,),
                headline=pool[(j + i) % len(pool)].format(s=sym),
                summary=f"Synthetic headline ({regime} regime).", source="sim", sentiment=round(s, 4)))
        return out

    # --- batches ------------------------------------------------------------------------------

    def _make_batches(self, day: int, j0: int, j1: int, prev_close: np.ndarray) -> list[BarBatch]:
        """Bars ``j0..j1-1`` of ``day`` given the previous session's close: 2-D arrays once,
        then each batch is a set of row views (a few microseconds per batch)."""
        data = self._day(day)
        sl = slice(j0, j1)
        o = prev_close * np.exp(data.o[sl])
        c = prev_close * np.exp(data.c[sl])
        # exp() rounding must not break high >= max(open, close) >= min(open, close) >= low.
        hi = np.maximum(prev_close * np.exp(data.h[sl]), np.maximum(o, c))
        lo = np.minimum(prev_close * np.exp(data.l[sl]), np.minimum(o, c))
        hs = np.maximum(data.half_spread[sl], 0.005 / c)  # never tighter than one cent
        bid, ask = c * np.exp(-hs), c * np.exp(hs)
        volume = data.volume[sl].copy()  # consumers may write into batches; the cache stays clean
        valid = np.ones(c.shape, dtype=bool)
        spy = (self._spy_prev_close(day) * np.exp(data.mkt[sl])).tolist()
        vix = data.vix[sl].tolist()
        syms, news = self.symbols, data.news
        batches = [
            BarBatch(ts, syms, o[i], hi[i], lo[i], c[i], volume[i], valid[i], bid[i], ask[i],
                     {"SPY": spy[i], "VIX": vix[i]}, list(news.get(j0 + i, ())))
            for i, ts in enumerate(data.ts[sl])
        ]
        if self._flow is not None:  # intrabar flow + option snapshots, from their own generators
            self._flow.attach(day, j0, batches)
        return batches

    def _start(self, resume: ResumePoint | None) -> tuple[int, np.ndarray]:
        """First live bar index and the closes of the bar before it."""
        level = self.start_levels.copy()
        if resume is None:
            return 0, level
        pos = {s: i for i, s in enumerate(resume.symbols)}
        closes = np.asarray(resume.closes, dtype=float)
        for i, s in enumerate(self.symbols):
            j = pos.get(s)
            # A symbol without a stored close (new in the universe) starts at its own level.
            if j is not None and math.isfinite(closes[j]) and closes[j] > 0:
                level[i] = closes[j]
        return self.bar_after(resume.last_ts), level

    async def _warm(self, day: int) -> None:
        # Big universes take long to draw; keep the event loop free while numpy works.
        if len(self.symbols) * self.bars_per_day * _SUBSTEPS > 2_000_000 and day not in self._days:
            await asyncio.to_thread(lambda: (self._day(day), self._spy_prev_close(day)))

    @property
    def connected(self) -> bool:
        return not self._closed  # embedded market: available until closed

    async def history(self, n_bars: int, resume: ResumePoint | None = None) -> list[BarBatch]:
        k, level = self._start(resume)
        chunks: list[list[BarBatch]] = []
        left = max(0, n_bars)
        while left > 0:  # walk back day by day, anchoring each day on the next one's open level
            d, j = divmod(k - 1, self.bars_per_day)
            j0 = max(j + 1 - left, 0)
            await self._warm(d)
            prev = level * np.exp(-self._day(d).c[j])
            chunks.append(self._make_batches(d, j0, j + 1, prev))
            left -= j + 1 - j0
            level, k = prev, d * self.bars_per_day
        return [b for chunk in reversed(chunks) for b in chunk]

    async def batches(self, resume: ResumePoint | None = None) -> AsyncIterator[BarBatch]:
        k, level = self._start(resume)
        self._pacer = pacer = Pacer(self.bar_seconds, self._cfg.speed)
        left = self.max_bars
        while not self._closed:
            d, j0 = divmod(k, self.bars_per_day)
            await self._warm(d)
            data = self._day(d)
            prev = level if j0 == 0 else level * np.exp(-data.c[j0 - 1])
            level = prev * np.exp(data.c[-1])  # tomorrow's anchor, taken before anyone can touch a batch
            for batch in self._make_batches(d, j0, self.bars_per_day, prev):
                if left is not None:
                    if left <= 0:
                        return
                    left -= 1
                if not await pacer.wait():
                    return
                yield batch
            k = (d + 1) * self.bars_per_day

    async def close(self) -> None:
        self._closed = True
        if self._pacer is not None:
            self._pacer.stop()
