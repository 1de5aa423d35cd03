"""Monte Carlo market scenarios: one path = daily bars for K symbols under one fixed scenario.

Why a generator of its own rather than ``SimFeed``: the sim draws a *Markov chain* of regimes
per seed (and its draws are pinned by parity tests); a stress test needs the regime *fixed*
for the whole path, plus processes the sim does not have (jump diffusion, bootstrap of real
returns). The cross-section follows the same one-factor model as the sim: symbol log return =
beta_i * market + idiosyncratic, idiosyncratic vol / spreads / volume widening with stress.

Scenarios:
- ``bull`` ``bear`` ``sideways`` ``crash`` ``recovery``: GBM market factor with the design's
  annual drift / vol (the sim's ``REGIME_DRIFT`` / ``REGIME_VOL``), fixed for the whole path;
- ``jump``: Merton jump diffusion -- diffusion 0.08 / 0.18 plus market-wide crash jumps
  (Poisson, 2 a year, log size N(-8%, 4%)), drift compensated so jumps are pure risk;
- ``bootstrap``: stationary block bootstrap (mean block 21 days) of real S&P 500 daily log
  returns 1999-2018, shipped by the ``arch`` package (no network).

Everything about path ``(scenario, index)`` comes from ``SeedSequence([seed, tag, index])``,
so a path is the same whichever worker draws it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from algobotd.domain import NS_PER_SECOND, BarBatch
from algobotd.feeds.sim import REGIME_DRIFT, REGIME_VOL, REGIMES

SCENARIOS = (*REGIMES, "jump", "bootstrap")
_TAG = {name: i + 1 for i, name in enumerate(SCENARIOS)}
DT = 1.0 / 252.0
NS_PER_DAY = 86_400 * NS_PER_SECOND
# 2024-01-02 14:30 UTC (09:30 New York): paths are stamped on consecutive days. A synthetic path
# has no calendar, and consecutive days keep DAY orders alive from one bar to the next.
T0_NS = 1_704_205_800 * NS_PER_SECOND
JUMP_RATE, JUMP_MEAN, JUMP_SD = 2.0, -0.08, 0.04
JUMP_MU, JUMP_SIGMA = 0.08, 0.18
BLOCK = 21


def scenario_seed(seed: int, scenario: str, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed & ((1 << 64) - 1), _TAG[scenario], index])


@lru_cache(maxsize=1)
def sp500_log_returns() -> np.ndarray:
    """Daily log returns of the S&P 500 index (adjusted close), 1999-01-04 .. 2018-12-31.

    Read straight from the CSV the ``arch`` package ships (``arch.data.sp500``) with the
    standard library: importing arch and pandas would add seconds to every worker's start-up.
    """
    import csv
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("arch")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'bootstrap' scenario needs the arch package (pip install arch)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "sp500" / "sp500.csv.gz"
    with gzip.open(path, "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    close = np.array([float(r["Adj Close"]) for r in rows])
    return np.diff(np.log(close))


def _market(scenario: str, rng: np.random.Generator, n: int) -> tuple[np.ndarray, float]:
    """(daily log returns of the market factor, its annual vol used to scale stress)."""
    if scenario in REGIMES:
        k = REGIMES.index(scenario)
        mu, sig = float(REGIME_DRIFT[k]), float(REGIME_VOL[k])
        return (mu - 0.5 * sig * sig) * DT + sig * math.sqrt(DT) * rng.standard_normal(n), sig
    if scenario == "jump":
        # compensator: E[e^J - 1] per jump, so the arithmetic drift stays JUMP_MU
        kappa = math.exp(JUMP_MEAN + 0.5 * JUMP_SD**2) - 1.0
        drift = (JUMP_MU - JUMP_RATE * kappa - 0.5 * JUMP_SIGMA**2) * DT
        z = rng.standard_normal(n)
        jumps = rng.poisson(JUMP_RATE * DT, n)
        size = JUMP_MEAN * jumps + JUMP_SD * np.sqrt(jumps) * rng.standard_normal(n)
        total_var = JUMP_SIGMA**2 + JUMP_RATE * (JUMP_MEAN**2 + JUMP_SD**2)
        return drift + JUMP_SIGMA * math.sqrt(DT) * z + size, math.sqrt(total_var)
    if scenario == "bootstrap":
        src = sp500_log_returns()
        out = np.empty(n)
        i = 0
        while i < n:  # stationary bootstrap: geometric block lengths, uniform starts
            start = int(rng.integers(0, src.size))
            length = min(int(rng.geometric(1.0 / BLOCK)), n - i, src.size - start)
            out[i : i + length] = src[start : start + length]
            i += length
        return out, float(np.std(src) * math.sqrt(252))
    raise ValueError(f"unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})")


@dataclass(slots=True)
class PathMarket:
    """One path's bars as ``[n_bars, n_symbols]`` matrices; ``warmup`` leading rows are history."""

    symbols: tuple[str, ...]
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    market: np.ndarray
    warmup: int

    def batches(self) -> list[BarBatch]:
        """One batch per bar; the SPY reference is one price, or one per path for a :func:`stack`."""
        valid = np.ones(len(self.symbols), dtype=bool)
        spy = (470.0 * np.exp(np.cumsum(self.market, axis=0))).tolist()
        # iterating a matrix yields its row views without a Python-level index per field
        rows = zip(self.ts.tolist(), self.open, self.high, self.low, self.close, self.volume, self.bid, self.ask, spy)
        return [BarBatch(ts, self.symbols, o, h, lo, c, v, valid, bid, ask, {"SPY": ref})
                for ts, o, h, lo, c, v, bid, ask, ref in rows]


def stack(markets: list[PathMarket]) -> PathMarket:
    """Paths side by side as one market (Monte Carlo lockstep): path k's symbols are the k-th block,
    named ``<symbol>.<k>``; the market factor gets one column per path. The paths must share their
    timestamps (same bars and warm-up)."""
    first = markets[0]
    if any(m.ts.shape != first.ts.shape or (m.ts != first.ts).any() or m.warmup != first.warmup for m in markets):
        raise ValueError("stacked paths must have the same bars and warm-up")
    symbols = tuple(f"{s}.{k}" for k, m in enumerate(markets) for s in m.symbols)
    fields = {f: np.hstack([getattr(m, f) for m in markets])
              for f in ("open", "high", "low", "close", "volume", "bid", "ask")}
    return PathMarket(symbols, first.ts, market=np.column_stack([m.market for m in markets]), warmup=first.warmup,
                      **fields)


def symbol_names(k: int) -> tuple[str, ...]:
    width = max(2, len(str(k - 1)))
    return tuple(f"MC{i:0{width}d}" for i in range(k))


def generate(scenario: str, seed: int, index: int, n_symbols: int, n_bars: int, warmup: int) -> PathMarket:
    """Bars of path ``index`` of ``scenario``: ``warmup`` history bars then ``n_bars`` live ones,
    all drawn from the same scenario (the model warms up in the market it will trade)."""
    rng = np.random.Generator(np.random.PCG64(scenario_seed(seed, scenario, index)))
    T, K = warmup + n_bars, n_symbols
    m, sig = _market(scenario, rng, T)
    beta = 0.6 + 0.8 * rng.random(K)
    stress = math.sqrt(max(sig, 0.05) / REGIME_VOL[0])
    iv = (0.10 + 0.25 * rng.random(K)) * stress
    idio = -0.5 * iv * iv * DT + iv * math.sqrt(DT) * rng.standard_normal((T, K))
    r = m[:, None] * beta + idio  # close-to-close log returns
    start = np.exp(np.log(20.0) + rng.random(K) * math.log(400.0 / 20.0))
    close = start * np.exp(np.cumsum(r, axis=0))
    prev = np.vstack([start[None, :], close[:-1]])
    # a quarter of the day's move (and some noise) happens overnight: the open gaps
    gap = 0.25 * r + 0.002 * stress * rng.standard_normal((T, K))
    open_ = prev * np.exp(gap)
    day_sd = np.sqrt(beta**2 * sig**2 + iv**2) * math.sqrt(DT)
    wick = np.abs(rng.standard_normal((2, T, K))) * (0.5 * day_sd)
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    z = np.abs(r) / day_sd
    volume = np.rint(np.exp(np.log(2e6) + rng.standard_normal(K)) * stress * (0.6 + 0.4 * z)
                     * np.exp(0.25 * rng.standard_normal((T, K))))
    # never tighter than a cent; capped so a path that crashed to pennies still quotes sensibly
    half = np.minimum(np.maximum((0.5e-4 * stress) * (1.0 + 9.0 * rng.random(K)) * (1.0 + 0.25 * z), 0.005 / close), 0.1)
    ts = T0_NS + (np.arange(T, dtype=np.int64) - warmup) * NS_PER_DAY
    return PathMarket(symbol_names(K), ts, open_, high, low, close, np.maximum(volume, 1.0),
                      close * np.exp(-half), close * np.exp(half), m, warmup)
