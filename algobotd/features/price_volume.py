"""Price and volume family (Alpha158-style), updated in O(1) per symbol per bar."""

from __future__ import annotations

import numpy as np

from algobotd.features.core import BatchInputs, safe_ratio, tiny
from algobotd.features.registry import FeatureSpec
from algobotd.features.rolling import Ewma, RollingExtrema, RollingMoments

FAMILY = "price_volume"
BARS = ("bars",)
INDEX = ("bars", "ref:index")
RET_LAGS = (1, 5, 10, 20, 60)
MA_WINDOWS = (5, 10, 20, 60)
STD_WINDOWS = (5, 10, 20, 60)
RSV_WINDOWS = (10, 20)
AROON_WINDOWS = (20, 60)
UP_WINDOWS = (10, 20)
LONG_WINDOWS = (20, 60)  # sumd, volume z, vwap, obv, close-volume corr, beta/corr to the index
# Column order of the per-window moment rings (same layout for every window).
C, R, UP, GAIN, LOSS, V, TPV, SV, LV, RI = range(10)
PAIR_C_LV, PAIR_R_RI = 0, 1


def specs() -> list[FeatureSpec]:
    out = [FeatureSpec(f"ret_{k}", FAMILY, k + 1, BARS, doc=f"log return over {k} bars") for k in RET_LAGS]
    out += [FeatureSpec(f"ma_ratio_{w}", FAMILY, w, BARS, doc=f"close / {w}-bar mean close - 1") for w in MA_WINDOWS]
    out += [FeatureSpec(f"std_{w}", FAMILY, w + 1, BARS, doc=f"std of 1-bar log returns over {w} bars")
            for w in STD_WINDOWS]
    out += [
        FeatureSpec("rsi_14", FAMILY, 15, BARS, doc="gains / (gains + losses) over 14 bars (Cutler RSI, 0..1)"),
        FeatureSpec("macd", FAMILY, 26, BARS, doc="(EMA12 - EMA26) / close"),
        FeatureSpec("macd_signal", FAMILY, 34, BARS, doc="EMA9 of (EMA12 - EMA26) / close"),
        FeatureSpec("macd_hist", FAMILY, 34, BARS, doc="macd - macd_signal"),
        FeatureSpec("boll_z_20", FAMILY, 20, BARS, doc="(close - 20-bar mean) / 20-bar std of close"),
        FeatureSpec("atr_14", FAMILY, 15, BARS, doc="14-bar mean true range / close"),
    ]
    out += [FeatureSpec(f"rsv_{w}", FAMILY, w, BARS, doc=f"stochastic %K: (close - {w}-bar low) / range")
            for w in RSV_WINDOWS]
    for w in AROON_WINDOWS:
        out.append(FeatureSpec(f"high_age_{w}", FAMILY, w, BARS, doc=f"bars since the {w}-bar high / {w}"))
        out.append(FeatureSpec(f"low_age_{w}", FAMILY, w, BARS, doc=f"bars since the {w}-bar low / {w}"))
    out += [FeatureSpec(f"up_share_{w}", FAMILY, w + 1, BARS, doc=f"share of up bars over {w} bars")
            for w in UP_WINDOWS]
    for w in LONG_WINDOWS:
        out += [
            FeatureSpec(f"sumd_{w}", FAMILY, w + 1, BARS, doc=f"(up moves - down moves) / total moves, {w} bars"),
            FeatureSpec(f"vol_z_{w}", FAMILY, w, BARS, doc=f"volume z-score over {w} bars"),
            FeatureSpec(f"vwap_dist_{w}", FAMILY, w, BARS, doc=f"close / {w}-bar VWAP (typical price) - 1"),
            FeatureSpec(f"obv_slope_{w}", FAMILY, w + 1, BARS, doc=f"OBV change over {w} bars / volume"),
            FeatureSpec(f"corr_cv_{w}", FAMILY, w, BARS, doc=f"corr(close, log1p volume) over {w} bars"),
            FeatureSpec(f"beta_idx_{w}", FAMILY, w + 1, INDEX, doc=f"beta of returns to the index, {w} bars"),
            FeatureSpec(f"corr_idx_{w}", FAMILY, w + 1, INDEX, doc=f"corr of returns with the index, {w} bars"),
        ]
    out += [
        FeatureSpec("k_mid", FAMILY, 1, BARS, doc="(close - open) / open"),
        FeatureSpec("k_len", FAMILY, 1, BARS, doc="(high - low) / open"),
        FeatureSpec("k_up", FAMILY, 1, BARS, doc="(high - max(open, close)) / open"),
        FeatureSpec("k_low", FAMILY, 1, BARS, doc="(min(open, close) - low) / open"),
        FeatureSpec("k_sft", FAMILY, 1, BARS, doc="(2 close - high - low) / open"),
    ]
    return out


def zscore(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """(x - mean) / std, 0 for a constant window (variance at rounding-noise level)."""
    flat = var <= tiny(mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x - mean) / np.sqrt(var)
    return np.where(flat, np.where(np.isnan(var), np.nan, 0.0), z)


def correlation(cov: np.ndarray, var_a: np.ndarray, var_b: np.ndarray, scale_a: np.ndarray,
                scale_b: np.ndarray) -> np.ndarray:
    """cov / (sd_a sd_b), NaN when either side is constant."""
    flat = (var_a <= tiny(scale_a)) | (var_b <= tiny(scale_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = cov / np.sqrt(var_a * var_b)
    return np.where(flat, np.nan, rho)


class PriceVolume:
    def __init__(self, n_symbols: int) -> None:
        self.windows = {w: RollingMoments(w, n_symbols, 10, pairs=((C, LV), (R, RI)))
                        for w in sorted(set(MA_WINDOWS) | set(STD_WINDOWS) | {14})}
        self.highs = {w: RollingExtrema(w, n_symbols, 1.0) for w in sorted(set(RSV_WINDOWS) | set(AROON_WINDOWS))}
        self.lows = {w: RollingExtrema(w, n_symbols, -1.0) for w in sorted(set(RSV_WINDOWS) | set(AROON_WINDOWS))}
        self.ema = Ewma((12.0, 26.0, 9.0), n_symbols, (26, 26, 34))

    def parts(self) -> list:  # type: ignore[type-arg]
        return [*self.windows.values(), *self.highs.values(), *self.lows.values(), self.ema]

    def update(self, x: BatchInputs, closes_ago) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
        c, r = x.c, x.r
        dc = c - x.prev_c
        row = np.empty((c.size, 10))
        row[:, C] = c
        row[:, R] = r
        row[:, UP] = np.where(np.isnan(r), np.nan, (r > 0).astype(float))
        row[:, GAIN] = np.maximum(dc, 0.0)  # NaN stays NaN (np.maximum propagates it)
        row[:, LOSS] = np.maximum(-dc, 0.0)
        row[:, V] = x.v
        row[:, TPV] = (x.h + x.l + c) / 3.0 * x.v
        row[:, SV] = np.sign(r) * x.v
        row[:, LV] = np.log1p(x.v)
        row[:, RI] = x.idx_r
        cols = x.cols
        for win in self.windows.values():
            win.push(cols, row)
        for w in self.highs:
            self.highs[w].push(cols, x.h)
            self.lows[w].push(cols, x.l)
        out: dict[str, np.ndarray] = {}
        for k in RET_LAGS:
            out[f"ret_{k}"] = np.log(c / closes_ago(cols, k))
        for w in MA_WINDOWS:
            out[f"ma_ratio_{w}"] = c / self.windows[w].mean(cols, C) - 1.0
        for w in STD_WINDOWS:
            out[f"std_{w}"] = self.windows[w].std(cols, R)
        w14 = self.windows[14]
        gain, loss = w14.sum(cols, GAIN), w14.sum(cols, LOSS)
        out["rsi_14"] = safe_ratio(gain, gain + loss, 0.5)
        ema = self.ema.push(cols, np.stack([c, c], axis=1), slice(0, 2))
        macd_raw = self.ema.value[cols, 0] - self.ema.value[cols, 1]
        signal = self.ema.push(cols, macd_raw[:, None], slice(2, 3))[:, 0]
        out["macd"] = (ema[:, 0] - ema[:, 1]) / c
        out["macd_signal"] = signal / c
        out["macd_hist"] = out["macd"] - out["macd_signal"]
        w20 = self.windows[20]
        out["boll_z_20"] = zscore(c, w20.mean(cols, C), w20.var(cols, C))
        out["atr_14"] = x.atr14 / c
        for w in RSV_WINDOWS:
            hi, _ = self.highs[w].query(cols)
            lo, _ = self.lows[w].query(cols)
            out[f"rsv_{w}"] = safe_ratio(c - lo, hi - lo, 0.5)
        for w in AROON_WINDOWS:
            out[f"high_age_{w}"] = self.highs[w].query(cols)[1] / w
            out[f"low_age_{w}"] = self.lows[w].query(cols)[1] / w
        for w in UP_WINDOWS:
            out[f"up_share_{w}"] = self.windows[w].mean(cols, UP)
        for w in LONG_WINDOWS:
            win = self.windows[w]
            g, lo_ = win.sum(cols, GAIN), win.sum(cols, LOSS)
            out[f"sumd_{w}"] = safe_ratio(g - lo_, g + lo_, 0.0)
            out[f"vol_z_{w}"] = zscore(x.v, win.mean(cols, V), win.var(cols, V))
            vol_sum = win.sum(cols, V)
            out[f"vwap_dist_{w}"] = c / safe_ratio(win.sum(cols, TPV), vol_sum) - 1.0
            out[f"obv_slope_{w}"] = safe_ratio(win.sum(cols, SV), vol_sum)
            out[f"corr_cv_{w}"] = correlation(win.cov(cols, PAIR_C_LV), win.var(cols, C), win.var(cols, LV),
                                              win.mean(cols, C), win.mean(cols, LV))
            cov_ri, var_ri, var_r = win.cov(cols, PAIR_R_RI), win.var(cols, RI), win.var(cols, R)
            ri_scale, r_scale = win.mean(cols, RI), win.mean(cols, R)
            flat_ri = var_ri <= tiny(ri_scale)
            out[f"beta_idx_{w}"] = np.where(flat_ri, np.nan, cov_ri / np.where(flat_ri, 1.0, var_ri))
            out[f"corr_idx_{w}"] = correlation(cov_ri, var_r, var_ri, r_scale, ri_scale)
        o = x.o
        out["k_mid"] = (c - o) / o
        out["k_len"] = (x.h - x.l) / o
        out["k_up"] = (x.h - np.maximum(o, c)) / o
        out["k_low"] = (np.minimum(o, c) - x.l) / o
        out["k_sft"] = (2.0 * c - x.h - x.l) / o
        return out
