"""Synthetic intrabar flow and option-chain snapshots for the simulated market.

Drawn from their own generators, seeded by (seed, tag, day, bar), so the simulator's
existing draws (bars, news) are untouched and a bar's flow is the same whichever bar a
run starts at. Everything is driven by the bar itself (its open, close and spread) and
never by later bars.

- quotes: ``QUOTE_STEPS`` updates moving from the open to the close, rounded to the cent,
  ending on the batch's bid/ask; their CKS OFI and the depth at the end go into
  ``IntrabarFlow``;
- trades: ``TRADE_STEPS`` prints near the quote path, the bar's volume split among them,
  signed by the tick rule;
- options: each symbol publishes a snapshot every ``OPTIONS_EVERY`` bars (phase from the
  symbol); implied vols follow the symbol's volatility, put volume rises after a down bar.
"""

from __future__ import annotations

import zlib

import numpy as np

from algobotd.domain import BarBatch, IntrabarFlow, OptionsSnapshot
from algobotd.features.intrabar import ofi_from_quote_path, tick_rule_volume

QUOTE_STEPS = 6
TRADE_STEPS = 8
OPTIONS_EVERY = 30
_TAG_FLOW = 11
_DAY_OFFSET = 1 << 40


def _cents(x: np.ndarray) -> np.ndarray:
    return np.round(x * 100.0) / 100.0


def bar_flow(g: np.random.Generator, o: np.ndarray, c: np.ndarray, bid: np.ndarray, ask: np.ndarray,
             volume: np.ndarray, depth: np.ndarray) -> IntrabarFlow:
    n = o.size
    frac = np.linspace(0.0, 1.0, QUOTE_STEPS)[:, None]
    half = (ask - bid) / 2.0
    mid = np.exp(np.log(o) + frac * np.log(c / o)) * np.exp(g.normal(0.0, 2e-4, (QUOTE_STEPS, n)) * (1 - frac))
    qb = _cents(mid - half)
    qa = np.maximum(_cents(mid + half), qb + 0.01)
    qb[-1], qa[-1] = bid, ask  # the path ends on the batch's quote
    sb = np.rint(depth * g.lognormal(0.0, 0.5, (QUOTE_STEPS, n)))
    sa = np.rint(depth * g.lognormal(0.0, 0.5, (QUOTE_STEPS, n)))
    ofi = ofi_from_quote_path(qb, sb, qa, sa)
    tfrac = np.linspace(0.0, 1.0, TRADE_STEPS)[:, None]
    tmid = np.exp(np.log(o) + tfrac * np.log(c / o))
    side = np.where(g.random((TRADE_STEPS, n)) < 0.5 + 0.3 * np.sign(c - o), 1.0, -1.0)
    price = _cents(tmid + side * half)
    w = g.random((TRADE_STEPS, n)) + 0.05
    size = volume * w / w.sum(axis=0)
    buy, sell = tick_rule_volume(price, size, o)
    return IntrabarFlow(ofi=ofi, bid_size=sb[-1], ask_size=sa[-1], buy_volume=buy, sell_volume=sell)


def options_snapshots(g: np.random.Generator, batch: BarBatch, bar: int, phase: np.ndarray,
                      vol_annual: np.ndarray) -> list[OptionsSnapshot]:
    due = np.flatnonzero((bar - phase) % OPTIONS_EVERY == 0)
    if due.size == 0:
        return []
    k = due.size
    z = g.standard_normal((k, 4))
    move = np.log(batch.close[due] / batch.open[due]) / np.maximum(vol_annual[due] / np.sqrt(252 * 390), 1e-9)
    atm = vol_annual[due] * np.exp(0.1 * z[:, 0] - 0.05 * np.clip(move, -3, 3))
    put_iv = atm * (1.08 + 0.03 * np.abs(z[:, 1]) + 0.02 * np.clip(-move, 0, 3))
    call_iv = atm * (0.96 + 0.02 * z[:, 2])
    base = g.poisson(200.0, (k, 2)).astype(float)
    tilt = np.exp(-0.3 * np.clip(move, -3, 3))
    ts = batch.ts + 1
    return [OptionsSnapshot(batch.symbols[i], ts, float(cv), float(pv), float(a), float(p), float(cc))
            for i, cv, pv, a, p, cc in zip(due.tolist(), (base[:, 0] / tilt).tolist(), (base[:, 1] * tilt).tolist(),
                                            atm.tolist(), put_iv.tolist(), np.maximum(call_iv, 0.01).tolist())]


class SimFlow:
    """Attaches flow and options to the simulator's batches (``SimFeed._make_batches``)."""

    def __init__(self, seed: int, symbols: tuple[str, ...], daily_volume: np.ndarray, vol_annual: np.ndarray,
                 bars_per_day: int) -> None:
        self.seed = seed
        self.depth = np.maximum(daily_volume / bars_per_day / 20.0, 100.0)  # shares shown at the touch
        self.vol_annual = vol_annual
        self.phase = np.array([zlib.crc32(s.encode()) % OPTIONS_EVERY for s in symbols])
        self.bars_per_day = bars_per_day

    def attach(self, day: int, j0: int, batches: list[BarBatch]) -> None:
        for j, batch in enumerate(batches, start=j0):
            g = np.random.Generator(np.random.PCG64([self.seed, _TAG_FLOW, day + _DAY_OFFSET, j]))
            batch.flow = bar_flow(g, batch.open, batch.close, batch.bid, batch.ask, batch.volume, self.depth)
            batch.options = options_snapshots(g, batch, day * self.bars_per_day + j, self.phase, self.vol_annual)
