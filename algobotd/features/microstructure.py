"""Market microstructure family: spreads, order flow, trade signs, volume profile, impact.

Quote- and trade-based features need ``BarBatch.bid/ask`` and ``BarBatch.flow`` and are
NaN without them; the ``proxy`` features estimate the same things from bars alone
(Corwin-Schultz and Roll spreads, bulk-volume classification, Kyle's lambda with
bar-return signs, a bar-level point of control).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.special import ndtr

from algobotd.features.core import VOLUME, BatchInputs, safe_ratio, tiny
from algobotd.features.price_volume import zscore
from algobotd.features.registry import FeatureSpec
from algobotd.features.rolling import LagRing, RollingMoments, StatePart

FAMILY = "microstructure"
BARS, QUOTES, TRADES = ("bars",), ("bars", "quotes"), ("bars", "trades")
PROFILE_WINDOW = 20
# Ring columns. Short window (20):
OFI, TDIFF, TSUM, BVC, V, CS, DC, DC_LAG, LNHL2, ABSR, DV = range(11)
PAIR_DC = 0
# Long window (60):
SPREAD, L_KX, L_ABSR, L_DV, L_R = range(5)
PAIR_KYLE = 0
_CS_K = 3.0 - 2.0 * math.sqrt(2.0)


def specs() -> list[FeatureSpec]:
    return [
        FeatureSpec("spread_bps", FAMILY, 1, QUOTES, doc="quoted spread at the bar close, basis points of mid"),
        FeatureSpec("spread_z_60", FAMILY, 60, QUOTES, doc="spread z-score over 60 bars"),
        FeatureSpec("spread_chg", FAMILY, 2, QUOTES, doc="spread change since the previous bar (bps)"),
        FeatureSpec("depth_imb", FAMILY, 1, QUOTES, doc="(bid size - ask size) / (bid size + ask size) at close"),
        FeatureSpec("ofi_depth", FAMILY, 1, QUOTES, doc="Cont-Kukanov-Stoikov OFI of the bar / mean depth"),
        FeatureSpec("ofi_z_20", FAMILY, 20, QUOTES, doc="OFI z-score over 20 bars"),
        FeatureSpec("trade_imb", FAMILY, 1, TRADES, doc="tick-rule (buy - sell) / (buy + sell) volume"),
        FeatureSpec("trade_imb_20", FAMILY, 20, TRADES, doc="tick-rule volume imbalance over 20 bars"),
        FeatureSpec("bvc_imb_20", FAMILY, 40, BARS, proxy=True,
                    doc="bulk-volume classification imbalance over 20 bars (proxy for trade_imb_20)"),
        FeatureSpec("cs_spread_20", FAMILY, 21, BARS, proxy=True,
                    doc="Corwin-Schultz high-low spread, 20-bar mean (proxy for spread_bps)"),
        FeatureSpec("roll_spread_20", FAMILY, 22, BARS, proxy=True,
                    doc="Roll spread from return autocovariance over 20 bars / close (proxy)"),
        FeatureSpec("amihud_20", FAMILY, 21, BARS, doc="1e6 * sum |r| / dollar volume, 20 bars"),
        FeatureSpec("amihud_60", FAMILY, 61, BARS, doc="1e6 * sum |r| / dollar volume, 60 bars"),
        FeatureSpec("kyle_lambda_60", FAMILY, 61, BARS, proxy=True,
                    doc="slope of r on sign(r) sqrt(dollar volume), 60 bars, x 1e3 (bar signs stand in for trades)"),
        FeatureSpec("poc_dist_60", FAMILY, 60, BARS, proxy=True,
                    doc="close / close of the highest-volume bar in 60 - 1 (bar-level point of control)"),
        FeatureSpec("vol_near_price_20", FAMILY, 20, BARS, proxy=True,
                    doc="share of 20-bar volume traded within one ATR of the close (bar typical prices)"),
        FeatureSpec("parkinson_20", FAMILY, 20, BARS, doc="Parkinson high-low volatility over 20 bars"),
    ]


def corwin_schultz(h: np.ndarray, l: np.ndarray, h_prev: np.ndarray, l_prev: np.ndarray,
                   range2: np.ndarray, range2_prev: np.ndarray) -> np.ndarray:
    """Two-bar Corwin-Schultz spread estimate, floored at 0 (NaN without a previous bar).
    ``range2`` is log(h / l) ** 2 of each bar (the Parkinson series: computed once per bar)."""
    beta = range2 + range2_prev
    gamma = np.log(np.maximum(h, h_prev) / np.minimum(l, l_prev)) ** 2
    alpha = (np.sqrt(2.0 * beta) - np.sqrt(beta)) / _CS_K - np.sqrt(gamma / _CS_K)
    s = 2.0 * (np.exp(alpha) - 1.0) / (1.0 + np.exp(alpha))
    return np.maximum(s, 0.0)


class Microstructure:
    def __init__(self, n_symbols: int) -> None:
        self.short = RollingMoments(20, n_symbols, 11, pairs=((DC, DC_LAG),))
        self.long = RollingMoments(60, n_symbols, 5, pairs=((L_R, L_KX),))
        self.prev = np.full((n_symbols, 5), np.nan)  # previous high, low, close change, spread, log range^2
        self.profile_tp = LagRing(PROFILE_WINDOW, n_symbols)
        self.profile_v = LagRing(PROFILE_WINDOW, n_symbols)

    def parts(self) -> list[StatePart]:
        return [self.short, self.long, self.profile_tp, self.profile_v]  # the 60-bar volume maximum is the core's

    def grow(self, n: int) -> None:
        for part in self.parts():
            part.grow(n)
        self.prev = np.concatenate([self.prev, np.full((n - self.prev.shape[0], 5), np.nan)])

    def update(self, x: BatchInputs, closes_ago: Callable[[np.ndarray, np.ndarray], np.ndarray]
               ) -> dict[str, np.ndarray]:
        cols, c, r, v = x.cols, x.c, x.r, x.v
        out: dict[str, np.ndarray] = {}
        # --- quotes -----------------------------------------------------------------------------
        quoted = np.isfinite(x.bid) & np.isfinite(x.ask) & (x.bid > 0) & (x.ask >= x.bid)
        mid = (x.bid + x.ask) / 2.0
        spread = np.where(quoted, 1e4 * (x.ask - x.bid) / np.where(quoted, mid, 1.0), np.nan)
        out["spread_bps"] = spread
        prev = self.prev[cols]
        h_prev, l_prev, dc_lag, spread_prev, range2_prev = prev.T
        out["spread_chg"] = spread - spread_prev
        bid_size, ask_size = x.flow_field("bid_size"), x.flow_field("ask_size")
        depth = bid_size + ask_size
        out["depth_imb"] = safe_ratio(bid_size - ask_size, depth)
        ofi = x.flow_field("ofi")
        out["ofi_depth"] = safe_ratio(ofi, depth / 2.0)
        buy, sell = x.flow_field("buy_volume"), x.flow_field("sell_volume")
        out["trade_imb"] = safe_ratio(buy - sell, buy + sell)
        # --- bar proxies ------------------------------------------------------------------------
        bvc = v * (2.0 * ndtr(safe_ratio(r, x.std20)) - 1.0)
        range2 = np.log(x.h / x.l) ** 2
        cs = corwin_schultz(x.h, x.l, h_prev, l_prev, range2, range2_prev)
        dc = c - x.prev_c
        keep = self.prev[cols[x.hold]]  # stale rows keep their previous bar
        if cols.size == self.prev.shape[0]:  # every symbol: column writes, no stacked copy
            for j, a in enumerate((x.h, x.l, dc, spread, range2)):
                self.prev[:, j] = a
        else:
            self.prev[cols] = np.stack([x.h, x.l, dc, spread, range2], axis=1)
        self.prev[cols[x.hold]] = keep
        dollar_volume = c * v
        absr = np.abs(r)
        row = np.empty((cols.size, 11))
        row[:, OFI], row[:, TDIFF], row[:, TSUM], row[:, BVC], row[:, V] = ofi, buy - sell, buy + sell, bvc, v
        row[:, CS], row[:, DC], row[:, DC_LAG] = cs, dc, dc_lag
        row[:, LNHL2], row[:, ABSR], row[:, DV] = range2, absr, dollar_volume
        self.short.push(cols, row, x.hold)
        kx = np.sign(r) * np.sqrt(dollar_volume)
        long_row = np.empty((cols.size, 5))
        long_row[:, SPREAD], long_row[:, L_KX], long_row[:, L_ABSR] = spread, kx, absr
        long_row[:, L_DV], long_row[:, L_R] = dollar_volume, r
        self.long.push(cols, long_row, x.hold)
        s, lg = self.short.stats(cols), self.long.stats(cols)
        out["spread_z_60"] = zscore(spread, lg.mean[:, SPREAD], lg.var[:, SPREAD])
        out["ofi_z_20"] = zscore(ofi, s.mean[:, OFI], s.var[:, OFI])
        out["trade_imb_20"] = safe_ratio(s.sum[:, TDIFF], s.sum[:, TSUM])
        out["bvc_imb_20"] = safe_ratio(s.sum[:, BVC], s.sum[:, V])
        out["cs_spread_20"] = s.mean[:, CS]
        out["roll_spread_20"] = 2.0 * np.sqrt(np.maximum(-s.cov[:, PAIR_DC], 0.0)) / c
        out["amihud_20"] = 1e6 * safe_ratio(s.sum[:, ABSR], s.sum[:, DV])
        out["amihud_60"] = 1e6 * safe_ratio(lg.sum[:, L_ABSR], lg.sum[:, L_DV])
        var_kx = lg.var[:, L_KX]
        flat = var_kx <= tiny(lg.mean[:, L_KX])
        out["kyle_lambda_60"] = np.where(flat, np.nan, 1e3 * lg.cov[:, PAIR_KYLE] / np.where(flat, 1.0, var_kx))
        assert x.extremes is not None  # the core keeps them whenever this family runs
        age = x.extremes[1][:, VOLUME]  # bars since the highest volume of the last 60
        ok = np.isfinite(age)
        if ok.all():  # past warm-up: one gather
            poc = closes_ago(cols, age.astype(np.int64))
        else:
            poc = np.full(cols.size, np.nan)
            poc[ok] = closes_ago(cols[ok], age[ok].astype(np.int64))
        out["poc_dist_60"] = c / poc - 1.0
        tp = (x.h + x.l + c) / 3.0
        self.profile_tp.push(cols, tp, x.hold)
        self.profile_v.push(cols, v, x.hold)
        # O(window) by nature (the band moves with the close); the window is short and fixed.
        sel = slice(None) if cols.size == self.profile_v.pushes.size else cols  # all symbols: no gather
        ring_tp, ring_v = self.profile_tp.ring[:, sel], self.profile_v.ring[:, sel]
        near = np.abs(ring_tp - c) <= x.atr14
        total = ring_v.sum(axis=0)
        share = safe_ratio((ring_v * near).sum(axis=0), total)
        seen = self.profile_v.pushes[cols] >= PROFILE_WINDOW
        out["vol_near_price_20"] = np.where(seen & np.isfinite(x.atr14), share, np.nan)
        out["parkinson_20"] = np.sqrt(s.mean[:, LNHL2] / (4.0 * math.log(2.0)))
        return out
