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
  symbol); implied vols follow the symbol's volatility, put volume rises after a down bar;
  open interest is ``OI_PER_CONTRACT`` x the base volumes, dealer gamma the ATM Black-Scholes
  gamma (30 days) on that open interest, and a poll trading ``UNUSUAL_VOLUME`` x its typical
  volume is flagged unusual (no extra draws: derived from the ones above).
"""

from __future__ import annotations

import zlib

import numpy as np

from algobotd.domain import BarBatch, IntrabarFlow, OptionsSnapshot
from algobotd.features.intrabar import ofi_from_quote_path, tick_rule_volume

QUOTE_STEPS = 6
TRADE_STEPS = 8
OPTIONS_EVERY = 30
OI_PER_CONTRACT = 40.0  # open interest per contract of typical poll volume
UNUSUAL_VOLUME = 1.5  # x the typical 2 x 200 contracts per poll
GAMMA_YEARS = 30 / 365  # tenor of the ATM gamma behind the dealer-gamma estimate
_TAG_FLOW = 11
_DAY_OFFSET = 1 << 40


def _cents(x: np.ndarray) -> np.ndarray:
    return np.round(x * 100.0) / 100.0


def bar_flow(o: np.ndarray, c: np.ndarray, bid: np.ndarray, ask: np.ndarray, volume: np.ndarray,
             depth: np.ndarray, draws: dict[str, np.ndarray]) -> IntrabarFlow:
    """Flow of a chunk of bars: price arrays ``[bars, n]``, draws ``[bars, steps, n]``;
    the returned arrays are ``[bars, n]``."""
    frac = np.linspace(0.0, 1.0, QUOTE_STEPS)[None, :, None]
    half = ((ask - bid) / 2.0)[:, None, :]
    lo, lc = np.log(o)[:, None, :], np.log(c / o)[:, None, :]
    mid = np.exp(lo + frac * lc) * np.exp(draws["mid"] * (1 - frac))
    qb = _cents(mid - half)
    qa = np.maximum(_cents(mid + half), qb + 0.01)
    qb[:, -1], qa[:, -1] = bid, ask  # the path ends on the batch's quote
    sb = np.rint(depth * draws["bid_size"])
    sa = np.rint(depth * draws["ask_size"])
    ofi = ofi_from_quote_path(*(np.moveaxis(a, 1, 0) for a in (qb, sb, qa, sa)))
    tfrac = np.linspace(0.0, 1.0, TRADE_STEPS)[None, :, None]
    tmid = np.exp(lo + tfrac * lc)
    side = np.where(draws["side"] < 0.5 + 0.3 * np.sign(c - o)[:, None, :], 1.0, -1.0)
    price = _cents(tmid + side * half)
    w = draws["weight"] + 0.05
    size = volume[:, None, :] * w / w.sum(axis=1, keepdims=True)
    buy, sell = tick_rule_volume(np.moveaxis(price, 1, 0), np.moveaxis(size, 1, 0), o)
    return IntrabarFlow(ofi=ofi, bid_size=sb[:, -1], ask_size=sa[:, -1], buy_volume=buy, sell_volume=sell)


def options_snapshots(batches: list[BarBatch], due: np.ndarray, z: np.ndarray, base: np.ndarray,
                      vol_annual: np.ndarray) -> list[list[OptionsSnapshot]]:
    """Snapshots per batch for the ``due[bars, n]`` symbols (``z``: [bars, n, 3], ``base``: [bars, n, 2])."""
    out: list[list[OptionsSnapshot]] = [[] for _ in batches]
    rows, cols = np.nonzero(due)
    if rows.size == 0:
        return out
    o = np.array([batches[r].open[c] for r, c in zip(rows.tolist(), cols.tolist())])
    c_ = np.array([batches[r].close[c] for r, c in zip(rows.tolist(), cols.tolist())])
    z, base, vol = z[rows, cols], base[rows, cols], vol_annual[cols]
    move = np.log(c_ / o) / np.maximum(vol / np.sqrt(252 * 390), 1e-9)
    atm = vol * np.exp(0.1 * z[:, 0] - 0.05 * np.clip(move, -3, 3))
    put_iv = atm * (1.08 + 0.03 * np.abs(z[:, 1]) + 0.02 * np.clip(-move, 0, 3))
    call_iv = np.maximum(atm * (0.96 + 0.02 * z[:, 2]), 0.01)
    tilt = np.exp(-0.3 * np.clip(move, -3, 3))
    call_oi, put_oi = OI_PER_CONTRACT * base[:, 0], OI_PER_CONTRACT * base[:, 1]
    gamma = 1.0 / (np.sqrt(2 * np.pi) * c_ * atm * np.sqrt(GAMMA_YEARS))  # ATM Black-Scholes gamma
    gex = (call_oi - put_oi) * gamma * 100.0 * c_ * c_ * 0.01  # options_flow.dealer_gamma's convention
    cv_, pv_ = base[:, 0] / tilt, base[:, 1] * tilt
    unusual = (cv_ + pv_ > UNUSUAL_VOLUME * 400.0).astype(float)
    for r, i, cv, pv, a, p, cc, coi, poi, g, u in zip(
            rows.tolist(), cols.tolist(), cv_.tolist(), pv_.tolist(), atm.tolist(), put_iv.tolist(), call_iv.tolist(),
            call_oi.tolist(), put_oi.tolist(), gex.tolist(), unusual.tolist()):
        b = batches[r]
        out[r].append(OptionsSnapshot(b.symbols[i], b.ts + 1, cv, pv, a, p, cc, coi, poi, g, u))
    return out


class SimFlow:
    """Attaches flow and options to the simulator's batches (``SimFeed._make_batches``)."""

    CHUNK = 64  # bars drawn and computed together (a fixed grid within each day)

    def __init__(self, seed: int, symbols: tuple[str, ...], daily_volume: np.ndarray, vol_annual: np.ndarray,
                 bars_per_day: int) -> None:
        self.seed = seed
        self.depth = np.maximum(daily_volume / bars_per_day / 20.0, 100.0)  # shares shown at the touch
        self.vol_annual = vol_annual
        self.phase = np.array([zlib.crc32(s.encode()) % OPTIONS_EVERY for s in symbols])
        self.bars_per_day = bars_per_day
        self._cache: tuple[tuple[int, int], dict[str, np.ndarray]] | None = None

    def _draws(self, day: int, chunk: int, n: int) -> dict[str, np.ndarray]:
        """Draws of one chunk of the day's grid: the same whichever bar a run starts at."""
        key = (day, chunk)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        g = np.random.Generator(np.random.PCG64([self.seed, _TAG_FLOW, day + _DAY_OFFSET, chunk]))
        C = self.CHUNK
        normal = g.standard_normal((C, 3 * QUOTE_STEPS + 5, n))
        uniform = g.random((C, 2 * TRADE_STEPS, n))
        q = QUOTE_STEPS
        draws = {"mid": 2e-4 * normal[:, :q], "bid_size": np.exp(0.5 * normal[:, q: 2 * q]),
                 "ask_size": np.exp(0.5 * normal[:, 2 * q: 3 * q]),
                 "opt_z": np.moveaxis(normal[:, 3 * q: 3 * q + 3], 1, 2),
                 # contract counts around 200 (normal approximation of a Poisson)
                 "opt_base": np.maximum(np.rint(200.0 + np.sqrt(200.0) * np.moveaxis(normal[:, 3 * q + 3:], 1, 2)), 0.0),
                 "side": uniform[:, :TRADE_STEPS], "weight": uniform[:, TRADE_STEPS:]}
        self._cache = (key, draws)
        return draws

    def attach(self, day: int, j0: int, batches: list[BarBatch]) -> None:
        if not batches:
            return
        n = len(batches[0])
        j = j0
        while j < j0 + len(batches):
            chunk, offset = divmod(j, self.CHUNK)
            take = min(self.CHUNK - offset, j0 + len(batches) - j)
            sub = batches[j - j0: j - j0 + take]
            full = self._draws(day, chunk, n)
            draws = {k: v[offset: offset + take] for k, v in full.items()}
            stack = lambda name: np.stack([getattr(b, name) for b in sub])  # noqa: E731
            flow = bar_flow(stack("open"), stack("close"), stack("bid"), stack("ask"), stack("volume"),
                            self.depth, draws)
            bars = day * self.bars_per_day + np.arange(j, j + take)
            due = (bars[:, None] - self.phase[None, :]) % OPTIONS_EVERY == 0
            snaps = options_snapshots(sub, due, draws["opt_z"], draws["opt_base"], self.vol_annual)
            for i, batch in enumerate(sub):
                batch.flow = IntrabarFlow(flow.ofi[i], flow.bid_size[i], flow.ask_size[i], flow.buy_volume[i],
                                          flow.sell_volume[i])
                batch.options = snaps[i]
            j += take
