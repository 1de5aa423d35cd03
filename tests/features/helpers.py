"""Shared helpers of the feature tests: run the engine, compare with the batch reference, real data."""

from __future__ import annotations

import numpy as np

from algobotd.config import FeaturesConfig
from algobotd.domain import BarBatch
from algobotd.features.engine import FeatureEngine

RTOL = 1e-9

# Random-walk config exercising every reference role (the synthetic REFS) and two sectors.
FULL_CFG = FeaturesConfig(curve_long="TNX", curve_short="IRX", dollar="UUP",
                          sectors=["S000=XLK", "S001=XLF", "S003=XLK", "LATE=XLF"])


def run_engine(batches: list[BarBatch], cfg: FeaturesConfig | None = None,
               engine: FeatureEngine | None = None) -> tuple[FeatureEngine, np.ndarray]:
    """The engine's full ``X`` after each batch, stacked as ``[t, symbol, feature]`` (NaN-padded)."""
    engine = engine or FeatureEngine(cfg)
    snaps = []
    for b in batches:
        engine.update(b)
        snaps.append(engine.X.copy())
    n = max(s.shape[0] for s in snaps)
    out = np.full((len(snaps), n, engine.X.shape[1]), np.nan)
    for t, s in enumerate(snaps):
        out[t, : s.shape[0]] = s
    return engine, out


def parity_failures(names: list[str] | tuple[str, ...], got: np.ndarray, ref: np.ndarray) -> dict[str, str]:
    """Per feature: NaN exactly where the reference is NaN, else |got - ref| <= RTOL * |ref|.

    A value far below its feature's typical size (a ratio minus 1 or a difference that
    happens to be near zero, e.g. vwap_dist = 7.8e-8 when the typical size is 1e-3) carries
    the rounding of its inputs amplified by the cancellation, whatever the summation order;
    so the bound is RTOL * (|ref| + median |ref| of that feature): relative 1e-9 for typical
    values, 1e-9 of the feature's scale for values near zero.
    """
    failures: dict[str, str] = {}
    assert got.shape == ref.shape, (got.shape, ref.shape)
    for j, name in enumerate(names):
        a, b = got[..., j], ref[..., j]
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        if (nan_a != nan_b).any():
            where = np.argwhere(nan_a != nan_b)[0].tolist()
            failures[name] = f"NaN pattern differs, first at [t, symbol] = {where}: {a[tuple(where)]} vs {b[tuple(where)]}"
            continue
        both = ~nan_b
        if not both.any():
            continue
        scale = float(np.median(np.abs(b[both])))
        err = np.abs(a[both] - b[both])
        bound = RTOL * (np.abs(b[both]) + scale)
        if (err > bound).any():
            k = int(np.argmax(err - bound))
            failures[name] = f"{int((err > bound).sum())} values off, worst {a[both][k]!r} vs {b[both][k]!r}"
    return failures


def arch_daily_batches(n_days: int) -> list[BarBatch]:
    """S&P 500 and NASDAQ daily bars shipped with the ``arch`` package (1999-2018), last ``n_days``;
    the S&P 500 close doubles as the index reference series."""
    from arch.data import nasdaq, sp500

    from algobotd.domain import NS_PER_SECOND

    a, b = sp500.load().iloc[-n_days:], nasdaq.load().iloc[-n_days:]
    assert (a.index == b.index).all()
    out = []
    for k in range(n_days):
        ts = int(a.index[k].value) + 16 * 3600 * NS_PER_SECOND  # Timestamp.value is ns; close at 16:00
        rows = [a.iloc[k], b.iloc[k]]
        col = lambda key: np.array([float(r[key]) for r in rows])  # noqa: E731
        close = col("Close")
        out.append(BarBatch(ts, ("SPX", "NDQ"), col("Open"), col("High"), col("Low"), close, col("Volume"),
                            np.ones(2, dtype=bool), np.full(2, np.nan), np.full(2, np.nan),
                            {"SPY": float(close[0])}))
    return out
