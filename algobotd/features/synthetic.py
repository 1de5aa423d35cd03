"""Random-walk bar batches with the awkward cases, for tests and benchmarks (not the daemon).

Includes stale symbols, zero-volume bars, a symbol added mid-stream, reference series
with gaps (index, volatility index, rates, dollar, sectors), intrabar flow with missing
entries, quotes with gaps, news items, option snapshots (with open interest, dealer gamma
and unusual flags, some unknown) and Form 4 insider filings (some published long ago).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from algobotd.domain import NS_PER_SECOND, BarBatch, InsiderFiling, IntrabarFlow, News, OptionsSnapshot

REFS = ("SPY", "VIX", "TNX", "IRX", "UUP", "XLK", "XLF")


def random_walk_batches(n_bars: int, n_symbols: int, seed: int = 0, *, late_symbol_at: int | None = None,
                        stale_rate: float = 0.05, zero_volume_rate: float = 0.03, ref_gap_rate: float = 0.05,
                        with_flow: bool = True, news_rate: float = 0.02, options_rate: float = 0.05,
                        bar_seconds: int = 60, insider_rate: float = 0.01) -> list[BarBatch]:
    """``n_bars`` batches of ``n_symbols`` symbols (``S000``...); with ``late_symbol_at`` one more
    symbol (``LATE``) joins at that batch, appended after the others."""
    g = np.random.default_rng(seed)
    gx = np.random.default_rng([seed, 1])  # option OI/gamma and insider draws: g's stream stays as it was
    total = n_symbols + (1 if late_symbol_at is not None else 0)
    names = tuple(f"S{i:03d}" for i in range(n_symbols)) + (("LATE",) if late_symbol_at is not None else ())
    logp = np.log(g.uniform(10.0, 300.0, total))
    ref_log = np.log(np.array([470.0, 18.0, 4.2, 5.1, 28.0, 200.0, 40.0]))
    out: list[BarBatch] = []
    t0 = 1_700_000_000 * NS_PER_SECOND
    for k in range(n_bars):
        n = n_symbols if late_symbol_at is None or k < late_symbol_at else total
        mkt = g.normal(0.0, 0.001)
        steps = mkt + g.normal(0.0, 0.002, (4, total))
        path = logp + np.cumsum(steps, axis=0)
        o, c = np.exp(logp), np.exp(path[-1])
        h = np.maximum(np.exp(path.max(axis=0)), np.maximum(o, c)) * np.exp(np.abs(g.normal(0, 5e-4, total)))
        lo = np.minimum(np.exp(path.min(axis=0)), np.minimum(o, c)) * np.exp(-np.abs(g.normal(0, 5e-4, total)))
        logp = path[-1]
        v = np.rint(g.lognormal(8.0, 0.7, total))
        v[g.random(total) < zero_volume_rate] = 0.0
        valid = g.random(total) >= stale_rate
        half = c * g.uniform(1e-4, 8e-4, total)
        bid, ask = c - half, c + half
        no_quote = g.random(total) < 0.004
        bid[no_quote], ask[no_quote] = np.nan, np.nan
        ref_log += np.array([mkt, -3 * mkt, 0, 0, 0, mkt, mkt]) + g.normal(0, 0.002, len(REFS))
        refs = {name: float(np.exp(x)) for name, x in zip(REFS, ref_log) if g.random() >= ref_gap_rate}
        flow = None
        if with_flow:
            bs, as_ = g.lognormal(6, 0.5, total), g.lognormal(6, 0.5, total)
            buy = v * g.uniform(0.2, 0.8, total)
            ofi = g.normal(0, 300, total)
            ofi[g.random(total) < 0.01] = np.nan
            flow = IntrabarFlow(ofi[:n], bs[:n], as_[:n], buy[:n], (v - buy)[:n])
        ts = t0 + k * bar_seconds * NS_PER_SECOND
        news = [News(f"n{k}-{i}", ts + 1, (names[i],), "headline", sentiment=float(g.uniform(-1, 1)))
                for i in np.flatnonzero(g.random(n) < news_rate)]
        options = [OptionsSnapshot(names[i], ts + 2, float(g.integers(0, 500)), float(g.integers(0, 500)),
                                   float(g.uniform(0.1, 0.6)), float(g.uniform(0.2, 0.7)), float(g.uniform(0.1, 0.5)))
                   for i in np.flatnonzero(g.random(n) < options_rate)]
        options = [_with_oi(o, gx) for o in options]
        insider = [_filing(names[i], ts, gx) for i in np.flatnonzero(gx.random(n) < insider_rate)]
        nan_where = lambda a: np.where(valid, a, np.nan)[:n]  # noqa: E731
        out.append(BarBatch(ts, names[:n], nan_where(o), nan_where(h), nan_where(lo), nan_where(c),
                            nan_where(v), valid[:n].copy(), bid[:n], ask[:n], refs, news, flow, options,
                            insider=insider))
    return out


def _with_oi(o: OptionsSnapshot, g: np.random.Generator) -> OptionsSnapshot:
    """Open interest, dealer gamma and the unusual flag; each unknown (NaN) now and then."""
    u = g.random(4)
    return replace(o, call_oi=float(g.integers(0, 50_000)) if u[0] > 0.1 else np.nan,
                   put_oi=float(g.integers(0, 50_000)),
                   gamma_exposure=float(g.normal(0.0, 5e7)) if u[1] > 0.1 else np.nan,
                   unusual=float(u[2] < 0.2) if u[3] > 0.1 else np.nan)


def _filing(symbol: str, ts: int, g: np.random.Generator) -> InsiderFiling:
    """A Form 4 filing published in this bar: a buy or sale by one of three insiders, a coverage-only
    filing, or (rarely) one published so long ago it is already out of the window."""
    u = g.random(3)
    if u[0] < 0.15:
        return InsiderFiling(symbol, ts + 3, "", 0.0, 0.0)
    shares = float(g.integers(-20_000, 20_000))
    published = ts + 3 - (200 * 86_400 * NS_PER_SECOND if u[1] < 0.05 else 0)
    return InsiderFiling(symbol, published, f"cik{int(u[2] * 3)}", shares, shares * float(g.uniform(10, 300)))
