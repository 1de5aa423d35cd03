"""Batch reference: every feature recomputed over a full history with pandas/numpy.

For tests and benchmarks only (never the daemon). It shares no state machinery with the
incremental engine: windows are explicit (``sliding_window_view`` / pandas), moments are
two-pass. Only the small value rules (``safe_ratio``'s fill values, ``tiny`` for
"constant window") are shared, so the two agree on degenerate windows.

Semantics mirrored from the engine: a symbol's features are computed on its own valid
bars (stale and bad bars removed), then held (forward-filled) through later batches in
which the symbol is stale; reference series advance in their own time and are held
between their updates; news and options are events on the batch timeline.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import ndtr

from algobotd.config import FeaturesConfig
from algobotd.domain import NS_PER_SECOND, BarBatch, InsiderFiling
from algobotd.features import alternative
from algobotd.features.core import safe_ratio, tiny
from algobotd.features.engine import bar_problems, full_registry, roles_from

LN2 = math.log(2.0)
CS_K = 3.0 - 2.0 * math.sqrt(2.0)


def windows(x: np.ndarray, w: int) -> np.ndarray:
    """[T, w] trailing windows (row t = x[t-w+1..t]); rows before the first full window are NaN."""
    if len(x) == 0:
        return np.empty((0, w))
    padded = np.concatenate([np.full(w - 1, np.nan), np.asarray(x, dtype=float)])
    return sliding_window_view(padded, w)


def rsum(x: np.ndarray, w: int) -> np.ndarray:
    return windows(x, w).sum(axis=1)  # NaN when any value in the window is NaN


def rmean(x: np.ndarray, w: int) -> np.ndarray:
    return windows(x, w).mean(axis=1)


def rvar(x: np.ndarray, w: int) -> np.ndarray:
    win = windows(x, w)
    return ((win - win.mean(axis=1, keepdims=True)) ** 2).sum(axis=1) / (w - 1)


def rcov(x: np.ndarray, y: np.ndarray, w: int) -> np.ndarray:
    a, b = windows(x, w), windows(y, w)
    return ((a - a.mean(axis=1, keepdims=True)) * (b - b.mean(axis=1, keepdims=True))).sum(axis=1) / (w - 1)


def rmax_age(x: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Rolling max and bars since it (ties: the most recent bar)."""
    win = windows(x, w)
    rev = win[:, ::-1]
    age = np.argmax(rev, axis=1).astype(float)
    full = np.arange(len(x)) >= w - 1
    return np.where(full, win.max(axis=1), np.nan), np.where(full, age, np.nan)


def zscore(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x - mean) / np.sqrt(var)
    return np.where(var <= tiny(mean), np.where(np.isnan(var), np.nan, 0.0), z)


def corr(cov: np.ndarray, va: np.ndarray, vb: np.ndarray, ma: np.ndarray, mb: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = cov / np.sqrt(va * vb)
    return np.where((va <= tiny(ma)) | (vb <= tiny(mb)), np.nan, rho)


def lag(x: np.ndarray, k: int) -> np.ndarray:
    return pd.Series(x).shift(k).to_numpy()


def pct_rank(x: np.ndarray, w: int) -> np.ndarray:
    win = windows(x, w)
    with np.errstate(invalid="ignore"):
        share = (win <= win[:, -1:]).mean(axis=1)
    return np.where(np.isfinite(win).all(axis=1), share, np.nan)


def symbol_features(d: pd.DataFrame) -> dict[str, np.ndarray]:
    """Bar-driven features of one symbol over its valid bars (columns o,h,l,c,v,bid,ask,flow...,idx_log)."""
    o, h, l, c, v = (d[k].to_numpy() for k in ("o", "h", "l", "c", "v"))
    pc = lag(c, 1)
    r = np.log(c / pc)
    dc = c - pc
    f: dict[str, np.ndarray] = {}
    for k in (1, 5, 10, 20, 60):
        f[f"ret_{k}"] = np.log(c / lag(c, k))
    for w in (5, 10, 20, 60):
        f[f"ma_ratio_{w}"] = c / rmean(c, w) - 1.0
        f[f"std_{w}"] = np.sqrt(np.maximum(rvar(r, w), 0.0))
    gain, loss = np.maximum(dc, 0.0), np.maximum(-dc, 0.0)
    g14, l14 = rsum(gain, 14), rsum(loss, 14)
    f["rsi_14"] = safe_ratio(g14, g14 + l14, 0.5)
    n_seen = np.arange(1, len(c) + 1)
    cs = pd.Series(c)
    e12 = cs.ewm(span=12, adjust=False).mean().to_numpy()
    e26 = cs.ewm(span=26, adjust=False).mean().to_numpy()
    sig = pd.Series(e12 - e26).ewm(span=9, adjust=False).mean().to_numpy()
    f["macd"] = np.where(n_seen >= 26, (e12 - e26) / c, np.nan)
    f["macd_signal"] = np.where(n_seen >= 34, sig / c, np.nan)
    f["macd_hist"] = f["macd"] - f["macd_signal"]
    f["boll_z_20"] = zscore(c, rmean(c, 20), rvar(c, 20))
    tr = np.maximum(h - l, np.maximum(np.abs(h - pc), np.abs(l - pc)))
    atr = rmean(tr, 14)
    f["atr_14"] = atr / c
    for w in (10, 20):
        hi, _ = rmax_age(h, w)
        lo = -rmax_age(-l, w)[0]
        f[f"rsv_{w}"] = safe_ratio(c - lo, hi - lo, 0.5)
    for w in (20, 60):
        f[f"high_age_{w}"] = rmax_age(h, w)[1] / w
        f[f"low_age_{w}"] = rmax_age(-l, w)[1] / w
    up = np.where(np.isnan(r), np.nan, (r > 0).astype(float))
    for w in (10, 20):
        f[f"up_share_{w}"] = rmean(up, w)
    lv = np.log1p(v)
    tpv = (h + l + c) / 3.0 * v
    sv = np.sign(r) * v
    ri = d["idx_r"].to_numpy()
    for w in (20, 60):
        g, lo_ = rsum(gain, w), rsum(loss, w)
        f[f"sumd_{w}"] = safe_ratio(g - lo_, g + lo_, 0.0)
        f[f"vol_z_{w}"] = zscore(v, rmean(v, w), rvar(v, w))
        vs = rsum(v, w)
        f[f"vwap_dist_{w}"] = c / safe_ratio(rsum(tpv, w), vs) - 1.0
        f[f"obv_slope_{w}"] = safe_ratio(rsum(sv, w), vs)
        f[f"corr_cv_{w}"] = corr(rcov(c, lv, w), rvar(c, w), rvar(lv, w), rmean(c, w), rmean(lv, w))
        cov, var_ri = rcov(r, ri, w), rvar(ri, w)
        flat = var_ri <= tiny(rmean(ri, w))
        f[f"beta_idx_{w}"] = np.where(flat, np.nan, cov / np.where(flat, 1.0, var_ri))
        f[f"corr_idx_{w}"] = corr(cov, rvar(r, w), var_ri, rmean(r, w), rmean(ri, w))
    f["k_mid"] = (c - o) / o
    f["k_len"] = (h - l) / o
    f["k_up"] = (h - np.maximum(o, c)) / o
    f["k_low"] = (np.minimum(o, c) - l) / o
    f["k_sft"] = (2 * c - h - l) / o
    f.update(micro_features(d, c, r, v, h, l, pc, atr))
    return f


def micro_features(d: pd.DataFrame, c: np.ndarray, r: np.ndarray, v: np.ndarray, h: np.ndarray,
                   l: np.ndarray, pc: np.ndarray, atr: np.ndarray) -> dict[str, np.ndarray]:
    f: dict[str, np.ndarray] = {}
    bid, ask = d["bid"].to_numpy(), d["ask"].to_numpy()
    with np.errstate(invalid="ignore"):
        quoted = np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask >= bid)
    spread = np.where(quoted, 1e4 * (ask - bid) / ((bid + ask) / 2.0), np.nan)
    f["spread_bps"] = spread
    f["spread_z_60"] = zscore(spread, rmean(spread, 60), rvar(spread, 60))
    f["spread_chg"] = spread - lag(spread, 1)
    bs, as_, ofi = d["bid_size"].to_numpy(), d["ask_size"].to_numpy(), d["ofi"].to_numpy()
    buy, sell = d["buy_volume"].to_numpy(), d["sell_volume"].to_numpy()
    f["depth_imb"] = safe_ratio(bs - as_, bs + as_)
    f["ofi_depth"] = safe_ratio(ofi, (bs + as_) / 2.0)
    f["ofi_z_20"] = zscore(ofi, rmean(ofi, 20), rvar(ofi, 20))
    f["trade_imb"] = safe_ratio(buy - sell, buy + sell)
    f["trade_imb_20"] = safe_ratio(rsum(buy - sell, 20), rsum(buy + sell, 20))
    std20 = np.sqrt(np.maximum(rvar(r, 20), 0.0))
    bvc = v * (2.0 * ndtr(safe_ratio(r, std20)) - 1.0)
    f["bvc_imb_20"] = safe_ratio(rsum(bvc, 20), rsum(v, 20))
    hp, lp = lag(h, 1), lag(l, 1)
    beta = np.log(h / l) ** 2 + np.log(hp / lp) ** 2
    gamma = np.log(np.maximum(h, hp) / np.minimum(l, lp)) ** 2
    alpha = (np.sqrt(2 * beta) - np.sqrt(beta)) / CS_K - np.sqrt(gamma / CS_K)
    f["cs_spread_20"] = rmean(np.maximum(2 * (np.exp(alpha) - 1) / (1 + np.exp(alpha)), 0.0), 20)
    dc = c - pc
    f["roll_spread_20"] = 2.0 * np.sqrt(np.maximum(-rcov(dc, lag(dc, 1), 20), 0.0)) / c
    dv = c * v
    for w in (20, 60):
        f[f"amihud_{w}"] = 1e6 * safe_ratio(rsum(np.abs(r), w), rsum(dv, w))
    kx = np.sign(r) * np.sqrt(dv)
    var_kx = rvar(kx, 60)
    flat = var_kx <= 1e-14 * rmean(kx, 60) ** 2 + 1e-26
    f["kyle_lambda_60"] = np.where(flat, np.nan, 1e3 * rcov(r, kx, 60) / np.where(flat, 1.0, var_kx))
    _, age = rmax_age(v, 60)
    t = np.arange(len(c))
    poc = np.full(len(c), np.nan)
    ok = np.isfinite(age)
    poc[ok] = c[t[ok] - age[ok].astype(int)]
    f["poc_dist_60"] = c / poc - 1.0
    tp = (h + l + c) / 3.0
    tpw, vw = windows(tp, 20), windows(v, 20)
    near = np.abs(tpw - c[:, None]) <= atr[:, None]
    share = safe_ratio((vw * near).sum(axis=1), vw.sum(axis=1))
    f["vol_near_price_20"] = np.where((t >= 19) & np.isfinite(atr), share, np.nan)
    f["parkinson_20"] = np.sqrt(rmean(np.log(h / l) ** 2, 20) / (4 * LN2))
    return f


# --- reference series, events and assembly ------------------------------------------------------


def own_time(values: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply ``fn`` to the finite entries of a timeline series, then hold results between them."""
    present = np.isfinite(values)
    out = np.full(len(values), np.nan)
    out[present] = fn(values[present])
    seen = np.maximum.accumulate(np.where(present, np.arange(len(values)), -1))
    return np.where(seen >= 0, out[np.maximum(seen, 0)], np.nan)


def held(values: np.ndarray) -> np.ndarray:
    return own_time(values, lambda x: x)


def market_features(refs: pd.DataFrame, cfg: FeaturesConfig) -> dict[str, np.ndarray]:
    """Market-wide features on the batch timeline (``refs``: one column per configured series)."""
    T = len(refs)

    def col(name: str) -> np.ndarray:
        return refs[name].to_numpy() if name else np.full(T, np.nan)

    def ret(name: str, k: int) -> np.ndarray:
        return own_time(col(name), lambda x: np.log(x / lag(x, k)))

    f: dict[str, np.ndarray] = {}
    vix, idx = col(cfg.vol_index), col(cfg.index)
    f["vix_level"] = held(vix) / 100.0
    f["vix_pct_120"] = own_time(vix, lambda x: pct_rank(x, 120))
    f["vix_chg_5"] = ret(cfg.vol_index, 5)
    rv = lambda x: np.sqrt(np.maximum(rvar(np.log(x / lag(x, 1)), 20), 0.0))  # noqa: E731
    f["idx_rv_20"] = own_time(idx, rv)
    f["idx_rv_pct_120"] = own_time(idx, lambda x: pct_rank(rv(x), 120))
    f["idx_ret_5"], f["idx_ret_20"] = ret(cfg.index, 5), ret(cfg.index, 20)
    a, b = held(col(cfg.curve_long)), held(col(cfg.curve_short))
    slope = a - b if cfg.curve_kind == "rate" else np.log(a / b)
    f["yc_slope"], f["yc_slope_chg_20"] = slope, slope - lag(slope, 20)
    f["usd_mom_5"], f["usd_mom_20"] = ret(cfg.dollar, 5), ret(cfg.dollar, 20)
    return f


def event_features(batches: list[BarBatch], known: list[set[str]], symbol: str,
                   half_life_s: float) -> dict[str, np.ndarray]:
    """News and options features of one symbol on the batch timeline (direct sums, no recursion)."""
    T = len(batches)
    ts = np.array([b.ts for b in batches], dtype=np.int64)
    sent, count, age = np.zeros(T), np.zeros(T), np.full(T, np.nan)
    items = [(t, float(n.sentiment or 0.0)) for t, b in enumerate(batches) for n in b.news
             if symbol in n.symbols and symbol in known[t] and math.isfinite(float(n.sentiment or 0.0))]
    for t0, s in items:
        w = 0.5 ** ((ts[t0:] - ts[t0]) / (half_life_s * NS_PER_SECOND))
        sent[t0:] += s * w
        count[t0:] += w
    last = np.full(T, -1, dtype=np.int64)
    for t0, _ in items:
        last[t0:] = ts[t0]
    age = np.where(last >= 0, np.log1p((ts - last) / (60.0 * NS_PER_SECOND)), np.nan)
    pcr, ema, skew, atm = (np.full(T, np.nan) for _ in range(4))
    cur = (np.nan, np.nan, np.nan, np.nan)
    for t, b in enumerate(batches):
        for o in b.options:
            nums = (o.call_volume, o.put_volume, o.atm_iv, o.put_iv_25d, o.call_iv_25d)
            if o.symbol != symbol or symbol not in known[t] or not all(map(math.isfinite, nums)) \
                    or min(nums[:2]) < 0 or min(nums[2:]) <= 0:
                continue
            p = math.log((o.put_volume + 1.0) / (o.call_volume + 1.0))
            e = p if math.isnan(cur[1]) else 0.8 * cur[1] + 0.2 * p
            cur = (p, e, o.put_iv_25d - o.call_iv_25d, o.atm_iv)
        pcr[t], ema[t], skew[t], atm[t] = cur
    return {"news_sent": sent, "news_count": count, "news_age": age, "opt_pcr": pcr, "opt_pcr_ema": ema,
            "opt_iv_skew": skew, "opt_atm_iv": atm, **flow_insider_features(batches, known, symbol)}


def flow_insider_features(batches: list[BarBatch], known: list[set[str]], symbol: str) -> dict[str, np.ndarray]:
    """Open interest, dealer gamma and unusual flags of the latest snapshot, and insider filings
    within the window recomputed from scratch at every batch (no running state)."""
    T = len(batches)
    out = {k: np.full(T, np.nan) for k in ("opt_pcr_oi", "opt_gex", "opt_unusual", "insider_net_value",
                                           "insider_buy_ratio", "insider_net_insiders")}
    cur = (np.nan, np.nan, np.nan)
    window = alternative.INSIDER_WINDOW_DAYS * 86_400 * NS_PER_SECOND
    filings: list[tuple[int, InsiderFiling]] = []  # (batch attached to, filing)
    covered = False
    for t, b in enumerate(batches):
        for o in b.options:
            if o.symbol == symbol and symbol in known[t]:
                g = o.gamma_exposure
                cur = (alternative.oi_ratio(o.put_oi, o.call_oi),
                       float(alternative.signed_log1p(g / alternative.GEX_SCALE)) if math.isfinite(g) else np.nan,
                       alternative.unusual_flag(o.unusual))
        out["opt_pcr_oi"][t], out["opt_gex"][t], out["opt_unusual"][t] = cur
        mine = [f for f in b.insider if f.symbol == symbol and symbol in known[t] and alternative.usable_filing(f)]
        covered = covered or bool(mine)
        filings += [(t, f) for f in mine if f.owner]
        if covered:
            live = [f for _, f in filings if b.ts - f.ts < window]
            (out["insider_net_value"][t], out["insider_buy_ratio"][t],
             out["insider_net_insiders"][t]) = alternative.insider_summary(live)
    return out


FLOW = ("ofi", "bid_size", "ask_size", "buy_volume", "sell_volume")


def reference_features(batches: list[BarBatch], cfg: FeaturesConfig | None = None) -> tuple[list[str], np.ndarray]:
    """Feature names and ``X[t, symbol, feature]`` after each batch (symbols in first-seen order),
    as the engine would hold them after ``update(batches[t])``."""
    with np.errstate(all="ignore"):
        return _reference_features(batches, cfg or FeaturesConfig())


def _reference_features(batches: list[BarBatch], cfg: FeaturesConfig) -> tuple[list[str], np.ndarray]:
    names = list(full_registry().select(cfg.disabled_families, cfg.disabled).names)
    order: dict[str, int] = {}
    accepted, last_ts = [], None
    for t, b in enumerate(batches):
        for s in b.symbols:
            order.setdefault(s, len(order))
        if last_ts is None or b.ts > last_ts:
            accepted.append(t)
            last_ts = b.ts
    acc = [batches[t] for t in accepted]
    T, n = len(acc), len(order)
    roles = roles_from(cfg)
    ref_names = [x for x in roles.names()]
    refs = pd.DataFrame({name: [b.refs.get(name, np.nan) for b in acc] for name in ref_names}, dtype=float)
    refs = refs.where(refs > 0)  # non-positive or NaN: as absent
    mkt = market_features(refs, cfg)
    idx_log = np.log(held(refs[cfg.index].to_numpy())) if cfg.index else np.full(T, np.nan)
    sector_of = dict(roles.sectors)
    known, seen = [], set()
    for b in acc:
        seen |= set(b.symbols)
        known.append(set(seen))
    X = np.full((T, n, len(names)), np.nan)
    for sym, i in order.items():
        rows = {k: np.full(T, np.nan) for k in ("o", "h", "l", "c", "v", "bid", "ask", *FLOW)}
        for t, b in enumerate(acc):
            if sym not in b.symbols:
                continue
            j = b.symbols.index(sym)
            for k, arr in zip(("o", "h", "l", "c", "v", "bid", "ask"),
                              (b.open, b.high, b.low, b.close, b.volume, b.bid, b.ask)):
                rows[k][t] = arr[j] if (k in ("bid", "ask") or b.valid[j]) else np.nan
            for k in FLOW:
                rows[k][t] = np.nan if b.flow is None else getattr(b.flow, k)[j]
        bad = np.zeros(T, dtype=bool)
        for mask in bar_problems(rows["o"], rows["h"], rows["l"], rows["c"], rows["v"]).values():
            bad |= mask
        valid_t = np.flatnonzero(~bad)  # NaN rows (absent or stale) count as "nan" problems
        d = pd.DataFrame({k: v[valid_t] for k, v in rows.items()})
        d["idx_r"] = np.diff(np.r_[np.nan, idx_log[valid_t]])
        feats = symbol_features(d)
        sec = sector_of.get(sym, "")
        sec_ret = {w: own_time(refs[sec].to_numpy(), lambda x, w=w: np.log(x / lag(x, w))) if sec
                   else np.full(T, np.nan) for w in (20, 60)}
        timeline = dict(mkt)
        timeline["sector_rs_20"] = sec_ret[20] - mkt["idx_ret_20"]
        timeline["sector_rs_60"] = sec_ret[60] - own_time(refs[cfg.index].to_numpy(), lambda x: np.log(x / lag(x, 60))) \
            if cfg.index else np.full(T, np.nan)
        timeline.update(event_features(acc, known, sym, cfg.news_half_life_seconds))
        for k, v in timeline.items():
            feats[k] = v[valid_t]
        feats["sym_vs_sector_20"] = feats["ret_20"] - sec_ret[20][valid_t]
        feats["rs_idx_20"] = feats["ret_20"] - mkt["idx_ret_20"][valid_t]
        block = np.column_stack([feats[name] for name in names]) if len(valid_t) else np.zeros((0, len(names)))
        col = np.full((T, len(names)), np.nan)
        col[valid_t] = block
        # held while stale: forward-fill from each valid bar
        holder = np.maximum.accumulate(np.where(np.isin(np.arange(T), valid_t), np.arange(T), -1))
        X[:, i, :] = np.where((holder >= 0)[:, None], col[np.maximum(holder, 0)], np.nan)
    # map back to every call (rejected batches repeat the previous state)
    per_call = np.full((len(batches), n, len(names)), np.nan)
    k = -1
    for t in range(len(batches)):
        if k + 1 < len(accepted) and accepted[k + 1] == t:
            k += 1
        if k >= 0:
            per_call[t] = X[k]
    return names, per_call
