"""Cross-asset family: volatility regime, yield curve, dollar, sector rotation.

Reference series (``BarBatch.refs``) are configured by role in ``[features]``. Each series
advances in its own time: a batch without it (or with a non-finite / non-positive value)
leaves its state alone, so its features keep their last value; a series never seen gives
NaN features and is listed in ``missing``. Market-wide values are the same for every
symbol; sector values follow the symbol's sector series (``features.sectors``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from algobotd.features.core import BatchInputs
from algobotd.features.registry import FeatureSpec

FAMILY = "cross_asset"
PCT_WINDOW = 120  # bars of history behind the percentile features
RV_WINDOW = 20
LEVEL_DEPTH = PCT_WINDOW + 1
RET_LAGS = (5, 20, 60)


@dataclass(frozen=True, slots=True)
class RefRoles:
    index: str = "SPY"
    vol_index: str = "VIX"
    curve_long: str = ""
    curve_short: str = ""
    curve_kind: str = "rate"  # "rate": long - short (yields); "price": log(long / short) (bond ETFs)
    dollar: str = ""
    sectors: tuple[tuple[str, str], ...] = ()  # (symbol, sector series)

    def names(self) -> tuple[str, ...]:
        named = [self.index, self.vol_index, self.curve_long, self.curve_short, self.dollar]
        named += [sec for _, sec in self.sectors]
        return tuple(dict.fromkeys(n for n in named if n))


def specs() -> list[FeatureSpec]:
    vix, idx, curve = ("ref:vol_index",), ("ref:index",), ("ref:curve_long", "ref:curve_short")
    sector = ("bars", "ref:sector", "ref:index")
    return [
        FeatureSpec("vix_level", FAMILY, 1, vix, doc="volatility index / 100"),
        FeatureSpec("vix_pct_120", FAMILY, PCT_WINDOW, vix, doc="percentile of the volatility index in 120 bars"),
        FeatureSpec("vix_chg_5", FAMILY, 6, vix, doc="log change of the volatility index over 5 bars"),
        FeatureSpec("idx_rv_20", FAMILY, RV_WINDOW + 1, idx,
                    doc="realised index volatility (std of log returns, 20 bars): the regime without a vol index"),
        FeatureSpec("idx_rv_pct_120", FAMILY, PCT_WINDOW + RV_WINDOW, idx, doc="percentile of idx_rv_20 in 120 bars"),
        FeatureSpec("idx_ret_5", FAMILY, 6, idx, doc="index log return over 5 bars"),
        FeatureSpec("idx_ret_20", FAMILY, 21, idx, doc="index log return over 20 bars"),
        FeatureSpec("yc_slope", FAMILY, 1, curve, doc="long - short rate (or log long/short bond-ETF price)"),
        FeatureSpec("yc_slope_chg_20", FAMILY, 21, curve, doc="yc_slope change over 20 batches"),
        FeatureSpec("usd_mom_5", FAMILY, 6, ("ref:dollar",), doc="dollar series log return over 5 bars"),
        FeatureSpec("usd_mom_20", FAMILY, 21, ("ref:dollar",), doc="dollar series log return over 20 bars"),
        FeatureSpec("sector_rs_20", FAMILY, 21, ("ref:sector", "ref:index"),
                    doc="sector log return - index log return, 20 bars"),
        FeatureSpec("sector_rs_60", FAMILY, 61, ("ref:sector", "ref:index"),
                    doc="sector log return - index log return, 60 bars"),
        FeatureSpec("sym_vs_sector_20", FAMILY, 21, sector, doc="ret_20 - sector log return over 20 bars"),
        FeatureSpec("rs_idx_20", FAMILY, 21, ("bars", "ref:index"), doc="ret_20 - index log return over 20 bars"),
    ]


_MARKET = ("vix_level", "vix_pct_120", "vix_chg_5", "idx_rv_20", "idx_rv_pct_120", "idx_ret_5", "idx_ret_20",
           "yc_slope", "yc_slope_chg_20", "usd_mom_5", "usd_mom_20")  # the same for every symbol


class CrossAsset:
    """Market-wide state is a handful of scalar series: plain Python floats in deques, because
    numpy's per-call cost on 1- to 7-element arrays is many times the arithmetic (this step
    runs once per batch, whatever the number of symbols)."""

    def __init__(self, n_symbols: int, roles: RefRoles) -> None:
        self.roles = roles
        self.names = roles.names()
        self.col = {n: j for j, n in enumerate(self.names)}
        self.levels: list[deque[float]] = [deque(maxlen=LEVEL_DEPTH) for _ in self.names]
        self.index_returns: deque[float] = deque(maxlen=RV_WINDOW)  # the index's log returns
        self.rv_hist: deque[float] = deque(maxlen=PCT_WINDOW)
        self.curve_hist: deque[float] = deque(maxlen=21)
        self.last = [math.nan] * len(self.names)
        self.sector_map = dict(roles.sectors)
        self.sector_col = np.full(0, -1, dtype=np.int64)
        self.missing: tuple[str, ...] = self.names
        self.dropped = 0  # non-finite / non-positive reference values
        self.market: dict[str, float] = {}
        self._sector_rs: dict[int, np.ndarray] = {}
        self._rets: dict[int, list[float]] = {}
        self.grow_symbols(())

    def grow_symbols(self, symbols: tuple[str, ...]) -> None:
        """Map symbols (all of them, in engine order) to their sector series' column (-1: none)."""
        self.sector_col = np.array([self.col.get(self.sector_map.get(s, ""), -1) for s in symbols], dtype=np.int64)

    def _ret(self, name: str, k: int) -> float:
        """Log return of a series over its own last ``k`` values (from this batch's lags)."""
        j = self.col.get(name)
        return math.nan if j is None else self._rets[k][j]

    @staticmethod
    def _pct(hist: deque[float]) -> float:
        """Share of the last PCT_WINDOW values of a series that are <= the latest one
        (NaN before PCT_WINDOW values or with a NaN among them)."""
        if len(hist) < PCT_WINDOW:
            return math.nan
        last = list(hist)[-PCT_WINDOW:]
        latest = last[-1]
        if not all(math.isfinite(v) for v in last):
            return math.nan
        return sum(1 for v in last if v <= latest) / PCT_WINDOW

    @staticmethod
    def _rv(rets: deque[float]) -> float:
        """Sample std (ddof=1) of the last RV_WINDOW index returns, NaN until they are all finite."""
        if len(rets) < RV_WINDOW or not all(math.isfinite(v) for v in rets):
            return math.nan
        mean = sum(rets) / RV_WINDOW
        return math.sqrt(sum((v - mean) ** 2 for v in rets) / (RV_WINDOW - 1))

    def step_market(self, refs: dict[str, float]) -> None:
        """Advance the reference series present in this batch (called once per batch)."""
        nan = math.nan
        missing = []
        for j, name in enumerate(self.names):
            v = float(refs.get(name, nan))
            if math.isfinite(v) and v > 0:
                self.levels[j].append(v)
                self.last[j] = v
            else:
                missing.append(name)
                self.dropped += name in refs
        self.missing = tuple(missing)
        # lagged levels of every series (NaN before it has that many values); lag 1 is the previous level
        lv = {k: [h[-1 - k] if len(h) > k else nan for h in self.levels] for k in (0, 1, *RET_LAGS)}
        self._rets = {k: [math.log(a / b) for a, b in zip(lv[0], lv[k])] for k in RET_LAGS}
        roles, m = self.roles, self.market
        idx = self.col.get(roles.index)
        idx_ok = idx is not None and roles.index not in self.missing
        if idx_ok:
            self.index_returns.append(math.log(lv[0][idx] / lv[1][idx]))
        vix = self.col.get(roles.vol_index)
        if vix is not None:
            m["vix_level"] = self.last[vix] / 100.0
            m["vix_pct_120"] = self._pct(self.levels[vix])
            m["vix_chg_5"] = self._ret(roles.vol_index, 5)
        if idx is not None:
            rv = self._rv(self.index_returns)
            if idx_ok:
                self.rv_hist.append(rv)
            m["idx_rv_20"] = rv
            m["idx_rv_pct_120"] = self._pct(self.rv_hist)
            m["idx_ret_5"] = self._ret(roles.index, 5)
            m["idx_ret_20"] = self._ret(roles.index, 20)
        lo, sh = self.col.get(roles.curve_long), self.col.get(roles.curve_short)
        slope = nan
        if lo is not None and sh is not None:
            a, b = self.last[lo], self.last[sh]
            slope = a - b if roles.curve_kind == "rate" else math.log(a / b)
        self.curve_hist.append(slope)
        m["yc_slope"] = slope
        m["yc_slope_chg_20"] = slope - self.curve_hist[0] if len(self.curve_hist) > 20 else nan
        m["usd_mom_5"] = self._ret(roles.dollar, 5)
        m["usd_mom_20"] = self._ret(roles.dollar, 20)
        idx_20, idx_60 = self._ret(roles.index, 20), self._ret(roles.index, 60)
        ret20, ret60 = np.array(self._rets[20]), np.array(self._rets[60])
        self._sector_rs = {20: ret20 - idx_20, 60: ret60 - idx_60, 0: ret20}

    def update(self, x: BatchInputs, ret_20: np.ndarray) -> dict[str, np.ndarray]:
        m = x.cols.size
        # one [features, symbols] block filled by broadcasting: its rows are the outputs
        block = np.empty((len(_MARKET), m))
        block[:] = np.array([self.market.get(name, np.nan) for name in _MARKET])[:, None]
        out = dict(zip(_MARKET, block))
        sec = self.sector_col[x.cols]
        has = sec >= 0
        for w in (20, 60):
            vals = np.full(m, np.nan)
            vals[has] = self._sector_rs[w][sec[has]]
            out[f"sector_rs_{w}"] = vals
        sector_ret = np.full(m, np.nan)
        sector_ret[has] = self._sector_rs[0][sec[has]]
        out["sym_vs_sector_20"] = ret_20 - sector_ret
        out["rs_idx_20"] = ret_20 - self.market.get("idx_ret_20", np.nan)
        return out
