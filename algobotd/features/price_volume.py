"""Price and volume family (Alpha158-style), updated in O(1) per symbol per bar."""

from __future__ import annotations

import numpy as np

from algobotd.features.core import BatchInputs, safe_ratio, tiny
from algobotd.features.registry import FeatureSpec
from algobotd.features.rolling import Ewma, RollingExtrema, RollingMoments, StatePart

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
C, R, UP, GAIN, LOSS, V, TPV, SV, LV, RI, TR = range(11)  # TR only in the 14-bar window
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
    z = (x - mean) / np.sqrt(var)  # the engine runs under np.errstate(all="ignore")
    return np.where(flat, np.where(np.isnan(var), np.nan, 0.0), z)


def correlation(cov: np.ndarray, var_a: np.ndarray, var_b: np.ndarray, scale_a: np.ndarray,
                scale_b: np.ndarray) -> np.ndarray:
    """cov / (sd_a sd_b), NaN when either side is constant."""
    flat = (var_a <= tiny(scale_a)) | (var_b <= tiny(scale_b))
    rho = cov / np.sqrt(var_a * var_b)
    return np.where(flat, np.nan, rho)


class PriceVolume:
    def __init__(self, n_symbols: int) -> None:
        every = tuple(range(10))
        # Each window rings only the series its features read (fewer columns, less work per bar).
        self.columns = {5: (C, R), 10: (C, R, UP), 14: (GAIN, LOSS, TR), 20: every, 60: every}
        self.windows = {w: RollingMoments(w, n_symbols, len(src), pairs=((C, LV), (R, RI)) if src == every else ())
                        for w, src in self.columns.items()}
        # rolling high (max of highs) and rolling low (min of lows) share one structure per window
        self.extrema = {w: RollingExtrema(w, n_symbols, (1.0, -1.0))
                        for w in sorted(set(RSV_WINDOWS) | set(AROON_WINDOWS))}
        self.ema = Ewma((12.0, 26.0, 9.0), n_symbols, (26, 26, 34))

    def parts(self) -> list[StatePart]:
        return [*self.windows.values(), *self.extrema.values(), self.ema]

    def grow(self, n: int) -> None:
        for part in self.parts():
            part.grow(n)

    def update(self, x: BatchInputs) -> dict[str, np.ndarray]:
        c, r = x.c, x.r
        dc = c - x.prev_c
        row = np.empty((c.size, 11))
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
        row[:, TR] = x.tr
        cols = x.cols
        st = {}
        for w, win in self.windows.items():
            src = self.columns[w]
            win.push(cols, row[:, :10] if len(src) == 10 else row[:, src])
            st[w] = win.stats(cols)
        # The core's shared inputs come from these windows (the core keeps none of its own).
        x.atr14 = st[14].mean[:, 2]
        x.std20 = np.sqrt(st[20].var[:, R])
        hl = np.stack([x.h, x.l], axis=1)
        for ext in self.extrema.values():
            ext.push(cols, hl)
        out: dict[str, np.ndarray] = {}
        for k in RET_LAGS:
            out[f"ret_{k}"] = np.log(c / x.lagged[k])
        for w in MA_WINDOWS:
            out[f"ma_ratio_{w}"] = c / st[w].mean[:, 0] - 1.0  # C is the first column everywhere
        for w in STD_WINDOWS:
            out[f"std_{w}"] = np.sqrt(st[w].var[:, 1])  # R is the second column everywhere
        gain, loss = st[14].sum[:, 0], st[14].sum[:, 1]
        out["rsi_14"] = safe_ratio(gain, gain + loss, 0.5)
        ema = self.ema.push(cols, np.stack([c, c], axis=1), slice(0, 2))
        macd_raw = self.ema.value[cols, 0] - self.ema.value[cols, 1]
        signal = self.ema.push(cols, macd_raw[:, None], slice(2, 3))[:, 0]
        out["macd"] = (ema[:, 0] - ema[:, 1]) / c
        out["macd_signal"] = signal / c
        out["macd_hist"] = out["macd"] - out["macd_signal"]
        s20 = st[20]
        out["boll_z_20"] = zscore(c, s20.mean[:, C], s20.var[:, C])
        out["atr_14"] = x.atr14 / c
        ext = {w: e.query(cols) for w, e in self.extrema.items()}  # (values, ages), column 0 high, 1 low
        for w in RSV_WINDOWS:
            hi, lo = ext[w][0][:, 0], ext[w][0][:, 1]
            out[f"rsv_{w}"] = safe_ratio(c - lo, hi - lo, 0.5)
        for w in AROON_WINDOWS:
            out[f"high_age_{w}"] = ext[w][1][:, 0] / w
            out[f"low_age_{w}"] = ext[w][1][:, 1] / w
        for w in UP_WINDOWS:
            out[f"up_share_{w}"] = st[w].mean[:, 2]  # UP is the third column of windows 10 and 20
        for w in LONG_WINDOWS:
            sw = st[w]
            g, lo_ = sw.sum[:, GAIN], sw.sum[:, LOSS]
            out[f"sumd_{w}"] = safe_ratio(g - lo_, g + lo_, 0.0)
            out[f"vol_z_{w}"] = zscore(x.v, sw.mean[:, V], sw.var[:, V])
            vol_sum = sw.sum[:, V]
            out[f"vwap_dist_{w}"] = c / safe_ratio(sw.sum[:, TPV], vol_sum) - 1.0
            out[f"obv_slope_{w}"] = safe_ratio(sw.sum[:, SV], vol_sum)
            out[f"corr_cv_{w}"] = correlation(sw.cov[:, PAIR_C_LV], sw.var[:, C], sw.var[:, LV],
                                              sw.mean[:, C], sw.mean[:, LV])
            cov_ri, var_ri = sw.cov[:, PAIR_R_RI], sw.var[:, RI]
            flat_ri = var_ri <= tiny(sw.mean[:, RI])
            out[f"beta_idx_{w}"] = np.where(flat_ri, np.nan, cov_ri / np.where(flat_ri, 1.0, var_ri))
            out[f"corr_idx_{w}"] = correlation(cov_ri, sw.var[:, R], var_ri, sw.mean[:, R], sw.mean[:, RI])
        o = x.o
        out["k_mid"] = (c - o) / o
        out["k_len"] = (x.h - x.l) / o
        out["k_up"] = (x.h - np.maximum(o, c)) / o
        out["k_low"] = (np.minimum(o, c) - x.l) / o
        out["k_sft"] = (2.0 * c - x.h - x.l) / o
        return out
