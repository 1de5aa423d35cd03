"""Cross-asset family: volatility regime, yield curve, dollar, sector rotation.

Reference series (``BarBatch.refs``) are configured by role in ``[features]``. Each series
advances in its own time: a batch without it (or with a non-finite / non-positive value)
leaves its state alone, so its features keep their last value; a series never seen gives
NaN features and is listed in ``missing``. Market-wide values are the same for every
symbol; sector values follow the symbol's sector series (``features.sectors``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from algobotd.features.core import BatchInputs
from algobotd.features.registry import FeatureSpec
from algobotd.features.rolling import LagRing, RollingMoments, StatePart

FAMILY = "cross_asset"
PCT_WINDOW = 120  # bars of history behind the percentile features
RV_WINDOW = 20
LEVEL_DEPTH = PCT_WINDOW + 1
RET_LAGS = (5, 20, 60)
_FIRST = np.array([0])  # the single column of the one-series rings
_BACK = np.arange(PCT_WINDOW)  # 0 = the latest value


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


class CrossAsset:
    def __init__(self, n_symbols: int, roles: RefRoles) -> None:
        self.roles = roles
        self.names = roles.names()
        self.col = {n: j for j, n in enumerate(self.names)}
        k = len(self.names)
        self.levels = LagRing(LEVEL_DEPTH, k)
        self._all, self._lags = np.arange(k), np.array((0, 1, *RET_LAGS))[:, None]
        self.returns = RollingMoments(RV_WINDOW, 1, 1)  # the index's log returns (only its volatility is read)
        self.rv_hist = LagRing(PCT_WINDOW, 1)
        self.curve_hist = LagRing(21, 1)
        self.last = np.full(k, np.nan)
        self.sector_map = dict(roles.sectors)
        self.sector_col = np.full(0, -1, dtype=np.int64)
        self.missing: tuple[str, ...] = self.names
        self.dropped = 0  # non-finite / non-positive reference values
        self.market: dict[str, float] = {}
        self._sector_rs: dict[int, np.ndarray] = {}
        self._rets: dict[int, np.ndarray] = {}
        self.grow_symbols(())

    def parts(self) -> list[StatePart]:
        return [self.returns]

    def grow_symbols(self, symbols: tuple[str, ...]) -> None:
        """Map symbols (all of them, in engine order) to their sector series' column (-1: none)."""
        self.sector_col = np.array([self.col.get(self.sector_map.get(s, ""), -1) for s in symbols], dtype=np.int64)

    def _ret(self, name: str, k: int) -> float:
        """Log return of a series over its own last ``k`` values (from this batch's gather)."""
        j = self.col.get(name)
        return np.nan if j is None else float(self._rets[k][j])

    @staticmethod
    def _pct(ring: np.ndarray, n_seen: int) -> float:
        """Share of the last PCT_WINDOW values of a ring column that are <= the latest one."""
        if n_seen < PCT_WINDOW:
            return np.nan
        last = ring[(n_seen - 1 - _BACK) % ring.size]  # last[0] is the latest
        return float(np.mean(last <= last[0])) if np.isfinite(last).all() else np.nan

    def step_market(self, refs: dict[str, float]) -> None:
        """Advance the reference series present in this batch (called once per batch)."""
        vals = np.array([refs.get(n, np.nan) for n in self.names], dtype=float)
        ok = np.isfinite(vals) & (vals > 0)
        good = ok.tolist()  # a few series: plain Python beats numpy calls on 7-element arrays
        self.dropped += sum(1 for n, g in zip(self.names, good) if not g and n in refs)
        self.missing = tuple(n for n, g in zip(self.names, good) if not g)
        present = np.flatnonzero(ok)
        self.levels.push(present, vals[present])
        # one gather per batch after the push: lag 1 is each present series' previous level
        lv = self.levels.ago(self._all, self._lags)
        idx = self.col.get(self.roles.index)
        if idx is not None and ok[idx]:
            self.returns.push(_FIRST, np.log(vals[idx] / lv[1][idx]).reshape(1, 1))
        self.last[present] = vals[present]
        self._rets = {lag: np.log(lv[0] / lv[i + 2]) for i, lag in enumerate(RET_LAGS)}  # engine: errstate
        roles, m = self.roles, self.market
        vix = self.col.get(roles.vol_index)
        if vix is not None:
            m["vix_level"] = self.last[vix] / 100.0
            m["vix_pct_120"] = self._pct(self.levels.ring[:, vix], int(self.levels.pushes[vix]))
            m["vix_chg_5"] = self._ret(roles.vol_index, 5)
        if idx is not None:
            rv = self.returns.std(_FIRST, 0)
            if ok[idx]:
                self.rv_hist.push(_FIRST, rv)
            m["idx_rv_20"] = float(rv[0])
            m["idx_rv_pct_120"] = self._pct(self.rv_hist.ring[:, 0], int(self.rv_hist.pushes[0]))
            m["idx_ret_5"] = self._ret(roles.index, 5)
            m["idx_ret_20"] = self._ret(roles.index, 20)
        lo, sh = self.col.get(roles.curve_long), self.col.get(roles.curve_short)
        slope = np.nan
        if lo is not None and sh is not None:
            a, b = self.last[lo], self.last[sh]
            slope = a - b if roles.curve_kind == "rate" else float(np.log(a / b))
        self.curve_hist.push(_FIRST, np.array([slope]))
        m["yc_slope"] = slope
        m["yc_slope_chg_20"] = float(slope - self.curve_hist.ago(_FIRST, 20)[0])
        m["usd_mom_5"] = self._ret(roles.dollar, 5)
        m["usd_mom_20"] = self._ret(roles.dollar, 20)
        idx_20, idx_60 = self._ret(roles.index, 20), self._ret(roles.index, 60)
        ret20, ret60 = self._rets[20], self._rets[60]
        self._sector_rs = {20: ret20 - idx_20, 60: ret60 - idx_60, 0: ret20}

    def update(self, x: BatchInputs, ret_20: np.ndarray) -> dict[str, np.ndarray]:
        m = x.cols.size
        out = {name: np.full(m, self.market.get(name, np.nan)) for name in
               ("vix_level", "vix_pct_120", "vix_chg_5", "idx_rv_20", "idx_rv_pct_120", "idx_ret_5",
                "idx_ret_20", "yc_slope", "yc_slope_chg_20", "usd_mom_5", "usd_mom_20")}
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
