"""Price and volume family (Alpha158-style), updated in O(1) per symbol per bar."""

from __future__ import annotations

import numpy as np

from algobotd.features.core import (
    EXTREMES_WINDOW,
    HIGH,
    LOW,
    BatchInputs,
    safe_ratio,
    tiny,
)
from algobotd.features.registry import FeatureSpec
from algobotd.features.rolling import Ewma, RollingMoments, StatePart

FAMILY = "price_volume"
BARS = ("bars",)
INDEX = ("bars", "ref:index")
RET_LAGS = (1, 5, 10, 20, 60)
SHORT_WINDOWS = (5, 10)  # one moments structure each for the short and the long windows
LONG_WINDOWS = (20, 60)  # sumd, volume z, vwap, obv, close-volume corr, beta/corr to the index
MA_WINDOWS = STD_WINDOWS = SHORT_WINDOWS + LONG_WINDOWS
RSV_WINDOWS = (10, 20)
AROON_WINDOWS = (20, 60)
UP_WINDOWS = (10, 20)
# Columns of the per-bar row. The long rings keep the first ten (same indices); the short
# rings keep close, return and up-bar flag.
C, R, V, LV, RI, UP, GAIN, LOSS, TPV, SV, TR = range(11)
LONG_COLUMNS = list(range(SV + 1))
SHORT_COLUMNS, S_UP = [C, R, UP], 2  # C, R keep their indices in the short rings
W14_COLUMNS = [GAIN, LOSS, TR]
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
        # Windows of the same series share one structure and one ring (``RollingMoments`` with
        # several lengths): the 5/10-bar windows ring only what their features read, the 20/60-bar
        # ones every series; each feature is then computed for both lengths in one array op.
        self.short = RollingMoments(SHORT_WINDOWS, n_symbols, len(SHORT_COLUMNS))
        self.w14 = RollingMoments(14, n_symbols, len(W14_COLUMNS))
        self.long = RollingMoments(LONG_WINDOWS, n_symbols, len(LONG_COLUMNS), pairs=((C, LV), (R, RI)))
        # rolling highs and lows come from the core's 60-bar structure (shared with microstructure):
        # its query for 60 bars, a scan of its ring for the shorter windows
        self.ema = Ewma((12.0, 26.0, 9.0), n_symbols, (26, 26, 34))

    def parts(self) -> list[StatePart]:
        return [self.short, self.w14, self.long, self.ema]

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
        cols, hold = x.cols, x.hold
        self.short.push(cols, row[:, SHORT_COLUMNS], hold)
        self.w14.push(cols, row[:, W14_COLUMNS], hold)
        self.long.push(cols, row[:, LONG_COLUMNS], hold)
        sh, s14, lg = self.short.stats(cols), self.w14.stats(cols), self.long.stats(cols)  # sh, lg: [window, m, k]
        # The core's shared inputs come from these windows (the core keeps none of its own).
        x.atr14 = s14.mean[:, 2]
        x.std20 = np.sqrt(lg.var[0, :, R])
        out: dict[str, np.ndarray] = {}
        rets = np.log(c / np.array([x.lagged[k] for k in RET_LAGS]))
        ma = c / np.concatenate([sh.mean[:, :, C], lg.mean[:, :, C]]) - 1.0  # MA_WINDOWS = short + long
        std = np.sqrt(np.concatenate([sh.var[:, :, R], lg.var[:, :, R]]))
        out.update(zip((f"ret_{k}" for k in RET_LAGS), rets))
        out.update(zip((f"ma_ratio_{w}" for w in MA_WINDOWS), ma))
        out.update(zip((f"std_{w}" for w in STD_WINDOWS), std))
        gain, loss = s14.sum[:, 0], s14.sum[:, 1]
        out["rsi_14"] = safe_ratio(gain, gain + loss, 0.5)
        ema = self.ema.push(cols, c[:, None], slice(0, 2), x.hold)  # both spans of the close (broadcast)
        macd_raw = self.ema.value[0, cols] - self.ema.value[1, cols]  # [series, symbols]
        signal = self.ema.push(cols, macd_raw[:, None], slice(2, 3), x.hold)[:, 0]
        out["macd"] = (ema[:, 0] - ema[:, 1]) / c
        out["macd_signal"] = signal / c
        out["macd_hist"] = out["macd"] - out["macd_signal"]
        out["boll_z_20"] = zscore(c, lg.mean[0, :, C], lg.var[0, :, C])
        out["atr_14"] = x.atr14 / c
        assert x.extremes is not None and x.extremes_state is not None  # kept whenever this family runs
        shorter = tuple(sorted(set(RSV_WINDOWS + AROON_WINDOWS) - {EXTREMES_WINDOW}))
        ext = x.extremes_state.recent(cols, shorter, ages=AROON_WINDOWS)  # (values, ages) [m, 3]
        ext[EXTREMES_WINDOW] = x.extremes  # columns HIGH, LOW, VOLUME
        for w in RSV_WINDOWS:
            hi, lo = ext[w][0][:, HIGH], ext[w][0][:, LOW]
            out[f"rsv_{w}"] = safe_ratio(c - lo, hi - lo, 0.5)
        for w in AROON_WINDOWS:
            age = ext[w][1]
            assert age is not None  # asked for above
            out[f"high_age_{w}"] = age[:, HIGH] / w
            out[f"low_age_{w}"] = age[:, LOW] / w
        out["up_share_10"] = sh.mean[1, :, S_UP]
        out["up_share_20"] = lg.mean[0, :, UP]
        # every statistic below is [2, m]: the 20- and 60-bar windows in one op
        g, lo_ = lg.sum[:, :, GAIN], lg.sum[:, :, LOSS]
        vol_sum = lg.sum[:, :, V]
        cov_ri, var_ri = lg.cov[:, :, PAIR_R_RI], lg.var[:, :, RI]
        flat_ri = var_ri <= tiny(lg.mean[:, :, RI])
        long = {
            "sumd": safe_ratio(g - lo_, g + lo_, 0.0),
            "vol_z": zscore(x.v, lg.mean[:, :, V], lg.var[:, :, V]),
            "vwap_dist": c / safe_ratio(lg.sum[:, :, TPV], vol_sum) - 1.0,
            "obv_slope": safe_ratio(lg.sum[:, :, SV], vol_sum),
            "corr_cv": correlation(lg.cov[:, :, PAIR_C_LV], lg.var[:, :, C], lg.var[:, :, LV],
                                   lg.mean[:, :, C], lg.mean[:, :, LV]),
            "beta_idx": np.where(flat_ri, np.nan, cov_ri / np.where(flat_ri, 1.0, var_ri)),
            "corr_idx": correlation(cov_ri, lg.var[:, :, R], var_ri, lg.mean[:, :, R], lg.mean[:, :, RI]),
        }
        for j, w in enumerate(LONG_WINDOWS):
            out.update((f"{name}_{w}", values[j]) for name, values in long.items())
        o = x.o
        out["k_mid"] = (c - o) / o
        out["k_len"] = (x.h - x.l) / o
        out["k_up"] = (x.h - np.maximum(o, c)) / o
        out["k_low"] = (np.minimum(o, c) - x.l) / o
        out["k_sft"] = (2.0 * c - x.h - x.l) / o
        return out
