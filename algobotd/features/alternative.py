"""Alternative-data family: news sentiment, options flow and insider activity.

News items (``BarBatch.news``), option-chain snapshots (``BarBatch.options``) and Form 4
filings (``BarBatch.insider``) are events, not bars: their state advances every batch, even
for a symbol whose bar is stale. An event is usable from the batch it is attached to (the
hub attaches it once published, altdata/hub.py), never before. The per-event Python loop is
over events (a few per batch), never over symbols.
"""

from __future__ import annotations

import math

import numpy as np

from algobotd.domain import NS_PER_SECOND, BarBatch, InsiderFiling, OptionsSnapshot
from algobotd.features.core import BatchInputs, grow_1d
from algobotd.features.registry import FeatureSpec
from algobotd.symbols import SymbolIndex

FAMILY = "alternative"
PCR_ALPHA = 0.2  # EWMA weight of the newest snapshot's put/call ratio
NO_NEWS = np.iinfo(np.int64).min
NO_EXPIRY = np.iinfo(np.int64).max
GEX_SCALE = 1e6  # dealer gamma in $ millions per 1% move before the signed log
INSIDER_VALUE_SCALE = 1e3  # net insider buying in $ thousands before the signed log
INSIDER_WINDOW_DAYS = 90  # trailing window of filings, by publication time (as altdata/form4.InsiderBook)


def signed_log1p(x: np.ndarray | float) -> np.ndarray | float:
    """sign(x) * log1p(|x|): keeps the sign, compresses amounts spanning orders of magnitude."""
    return np.sign(x) * np.log1p(np.abs(x))


def oi_ratio(put_oi: np.ndarray | float, call_oi: np.ndarray | float) -> np.ndarray:
    """log((put OI + 1) / (call OI + 1)), NaN when either is unknown or negative (arrays or scalars)."""
    put_oi, call_oi = np.asarray(put_oi, dtype=float), np.asarray(call_oi, dtype=float)
    ok = np.isfinite(put_oi) & np.isfinite(call_oi) & (np.minimum(put_oi, call_oi) >= 0)
    out = np.full(ok.shape, np.nan)
    # only where usable (no warnings from the rest, no np.errstate: it costs more than the math here)
    np.divide(put_oi + 1.0, call_oi + 1.0, out=out, where=ok)
    return np.log(out, out=out, where=ok)


def unusual_flag(x: np.ndarray | float) -> np.ndarray:
    """The flag where it is 0 or 1, NaN otherwise (unknown or garbled)."""
    x = np.asarray(x, dtype=float)
    return np.where((x == 0.0) | (x == 1.0), x, np.nan)


def insider_summary(rows: list[InsiderFiling]) -> tuple[float, float, float]:
    """(signed log net $ thousands, net / gross in [-1, 1], insiders net buying - net selling)
    of the live filings in the order they arrived (the batch reference sums in the same order)."""
    net = sum(f.net_value for f in rows)
    gross = sum(abs(f.net_value) for f in rows)
    by_owner: dict[str, float] = {}
    for f in rows:
        by_owner[f.owner] = by_owner.get(f.owner, 0.0) + f.net_value
    insiders = sum(1.0 for v in by_owner.values() if v > 0) - sum(1.0 for v in by_owner.values() if v < 0)
    return float(signed_log1p(net / INSIDER_VALUE_SCALE)), (net / gross if gross > 0 else 0.0), insiders


def usable_filing(f: InsiderFiling) -> bool:
    return math.isfinite(f.net_value) and math.isfinite(f.net_shares)


def specs() -> list[FeatureSpec]:
    news, opts, ins = ("news",), ("options",), ("insider",)
    return [
        FeatureSpec("news_sent", FAMILY, 1, news, doc="sum of news sentiment, decayed by features.news_half_life_seconds"),
        FeatureSpec("news_count", FAMILY, 1, news, doc="number of news items, decayed the same way"),
        FeatureSpec("news_age", FAMILY, 1, news, doc="log1p(minutes since the latest news item), NaN before any"),
        FeatureSpec("opt_pcr", FAMILY, 1, opts, doc="log((put volume + 1) / (call volume + 1)) of the latest snapshot"),
        FeatureSpec("opt_pcr_ema", FAMILY, 1, opts, doc="EWMA (alpha 0.2) of opt_pcr over snapshots"),
        FeatureSpec("opt_iv_skew", FAMILY, 1, opts, doc="25-delta put IV - 25-delta call IV"),
        FeatureSpec("opt_atm_iv", FAMILY, 1, opts, doc="at-the-money implied volatility"),
        FeatureSpec("opt_pcr_oi", FAMILY, 1, opts, doc="log((put OI + 1) / (call OI + 1)) of the latest snapshot"),
        FeatureSpec("opt_gex", FAMILY, 1, opts,
                    doc="signed log1p(dealer gamma exposure in $M per 1% move) of the latest snapshot"),
        FeatureSpec("opt_unusual", FAMILY, 1, opts, doc="1 when the latest snapshot flags unusual activity, else 0"),
        FeatureSpec("insider_net_value", FAMILY, 1, ins,
                    doc="signed log1p(open-market insider $ bought - sold, in $K) over 90 days of filings"),
        FeatureSpec("insider_buy_ratio", FAMILY, 1, ins, doc="net / gross insider $ over the same filings, [-1, 1]"),
        FeatureSpec("insider_net_insiders", FAMILY, 1, ins, doc="insiders net buying minus insiders net selling"),
    ]


class Alternative:
    def __init__(self, n_symbols: int, half_life_seconds: float) -> None:
        self.half_life_ns = half_life_seconds * NS_PER_SECOND
        self.sent = np.zeros(n_symbols)
        self.count = np.zeros(n_symbols)
        self.last_news_ts = np.full(n_symbols, NO_NEWS, dtype=np.int64)  # ints: ns timestamps overflow float precision
        self.pcr = np.full(n_symbols, np.nan)
        self.pcr_ema = np.full(n_symbols, np.nan)
        self.skew = np.full(n_symbols, np.nan)
        self.atm_iv = np.full(n_symbols, np.nan)
        self.pcr_oi = np.full(n_symbols, np.nan)
        self.gex = np.full(n_symbols, np.nan)
        self.unusual = np.full(n_symbols, np.nan)
        self.insider = InsiderWindow(n_symbols, INSIDER_WINDOW_DAYS * 86_400 * NS_PER_SECOND)
        self.last_ts: int | None = None
        self.stale_groups: frozenset[str] = frozenset()

    def grow(self, n: int) -> None:
        self.sent, self.count = grow_1d(self.sent, n, 0.0), grow_1d(self.count, n, 0.0)
        self.last_news_ts = grow_1d(self.last_news_ts, n, NO_NEWS)
        for name in ("pcr", "pcr_ema", "skew", "atm_iv", "pcr_oi", "gex", "unusual"):
            setattr(self, name, grow_1d(getattr(self, name), n, np.nan))
        self.insider.grow(n)

    def step_events(self, batch: BarBatch, index: SymbolIndex, dropped: dict[str, int]) -> None:
        if self.last_ts is not None:
            decay = 0.5 ** ((batch.ts - self.last_ts) / self.half_life_ns)
            self.sent *= decay
            self.count *= decay
        self.last_ts = batch.ts
        self.stale_groups = batch.stale_sources  # a failing source: its group reads NaN (altdata/hub.py)
        for item in batch.news:
            s = 0.0 if item.sentiment is None else float(item.sentiment)
            if not math.isfinite(s):
                dropped["news_bad_sentiment"] = dropped.get("news_bad_sentiment", 0) + 1
                continue
            for sym in item.symbols:
                i = index.get(sym)
                if i is None:
                    dropped["news_unknown_symbol"] = dropped.get("news_unknown_symbol", 0) + 1
                    continue
                self.sent[i] += s
                self.count[i] += 1.0
                self.last_news_ts[i] = batch.ts
        rows, snaps = [], []
        for snap in batch.options:
            i = index.get(snap.symbol)
            if i is None:
                dropped["options_unknown_symbol"] = dropped.get("options_unknown_symbol", 0) + 1
                continue
            rows.append(i)
            snaps.append(snap)
        if len(set(rows)) == len(rows):  # one snapshot per symbol (the usual case): array ops
            self._step_options(np.array(rows, dtype=np.int64), snaps, dropped)
        else:  # a symbol twice in one batch: in arrival order, one snapshot at a time
            for i, snap in zip(rows, snaps):
                self._step_options(np.array([i]), [snap], dropped)
        self.insider.step(batch, index, dropped)

    def _step_options(self, rows: np.ndarray, snaps: list[OptionsSnapshot], dropped: dict[str, int]) -> None:
        """Apply snapshots of distinct symbols ``rows`` at once (a few dozen per batch: one array op
        per field beats a Python loop of numpy scalar reads and writes per snapshot)."""
        if not snaps:
            return
        f = np.array([(o.put_oi, o.call_oi, o.gamma_exposure, o.unusual, o.call_volume, o.put_volume, o.atm_iv,
                       o.put_iv_25d, o.call_iv_25d) for o in snaps], dtype=float).T
        put_oi, call_oi, gamma, unusual, call_v, put_v, atm, put_iv, call_iv = f
        # open interest, gamma and the flag stand on their own: a snapshot without usable
        # volumes or vols (IB's skew probe failed) still carries them; unknown -> NaN
        self.pcr_oi[rows] = oi_ratio(put_oi, call_oi)
        self.gex[rows] = np.where(np.isfinite(gamma), signed_log1p(gamma / GEX_SCALE), np.nan)
        self.unusual[rows] = unusual_flag(unusual)
        ok = np.isfinite(f[4:]).all(axis=0) & (np.minimum(call_v, put_v) >= 0) & (f[6:].min(axis=0) > 0)
        if not ok.all():
            dropped["options_invalid"] = dropped.get("options_invalid", 0) + int((~ok).sum())
            rows, call_v, put_v, atm, put_iv, call_iv = (a[ok] for a in (rows, call_v, put_v, atm, put_iv, call_iv))
        pcr = np.log((put_v + 1.0) / (call_v + 1.0))
        prev = self.pcr_ema[rows]
        self.pcr_ema[rows] = np.where(np.isnan(prev), pcr, (1.0 - PCR_ALPHA) * prev + PCR_ALPHA * pcr)
        self.pcr[rows] = pcr
        self.skew[rows] = put_iv - call_iv
        self.atm_iv[rows] = atm

    def update(self, x: BatchInputs) -> dict[str, np.ndarray]:
        cols = x.cols
        last = self.last_news_ts[cols]
        minutes = np.where(last == NO_NEWS, np.nan, (x.ts - last) / (60.0 * NS_PER_SECOND))
        out = {  # ``cols`` is an index array: each gather below is already a copy
            "news_sent": self.sent[cols],
            "news_count": self.count[cols],
            "news_age": np.log1p(minutes),
            "opt_pcr": self.pcr[cols],
            "opt_pcr_ema": self.pcr_ema[cols],
            "opt_iv_skew": self.skew[cols],
            "opt_atm_iv": self.atm_iv[cols],
            "opt_pcr_oi": self.pcr_oi[cols],
            "opt_gex": self.gex[cols],
            "opt_unusual": self.unusual[cols],
            "insider_net_value": self.insider.value[cols],
            "insider_buy_ratio": self.insider.ratio[cols],
            "insider_net_insiders": self.insider.net_insiders[cols],
        }
        for group in self.stale_groups:  # state keeps advancing; only the output is masked
            for name in _GROUP_FEATURES.get(group, ()):
                out[name] = np.full(cols.size, np.nan)
        return out


_GROUP_FEATURES = {"news": ("news_sent", "news_count", "news_age"),
                   "options": ("opt_pcr", "opt_pcr_ema", "opt_iv_skew", "opt_atm_iv", "opt_pcr_oi", "opt_gex",
                               "opt_unusual"),
                   "insider": ("insider_net_value", "insider_buy_ratio", "insider_net_insiders")}


class InsiderWindow:
    """Per-symbol Form 4 filings published within the trailing window.

    A symbol reads NaN until the insider source covers it (its first filing, or an empty
    coverage filing); then 0 until trades arrive. Filings leave the window
    ``INSIDER_WINDOW_DAYS`` after publication; only symbols whose filings changed are
    re-summarised (a handful of filings per symbol, summed exactly as the reference does).
    """

    def __init__(self, n_symbols: int, window_ns: int) -> None:
        self.window_ns = window_ns
        self.live: dict[int, list[InsiderFiling]] = {}
        self.next_expiry = NO_EXPIRY
        self.value = np.full(n_symbols, np.nan)
        self.ratio = np.full(n_symbols, np.nan)
        self.net_insiders = np.full(n_symbols, np.nan)

    def grow(self, n: int) -> None:
        self.value, self.ratio = grow_1d(self.value, n, np.nan), grow_1d(self.ratio, n, np.nan)
        self.net_insiders = grow_1d(self.net_insiders, n, np.nan)

    def step(self, batch: BarBatch, index: SymbolIndex, dropped: dict[str, int]) -> None:
        changed: set[int] = set()
        for f in batch.insider:
            i = index.get(f.symbol)
            reason = "insider_unknown_symbol" if i is None else "" if usable_filing(f) else "insider_invalid"
            if reason or i is None:
                dropped[reason] = dropped.get(reason, 0) + 1
                continue
            changed.add(i)  # covered from now on, even by an empty coverage filing
            if f.owner and batch.ts - f.ts < self.window_ns:
                self.live.setdefault(i, []).append(f)
                self.next_expiry = min(self.next_expiry, f.ts + self.window_ns)
        if self.next_expiry <= batch.ts:
            self.next_expiry = NO_EXPIRY
            for i, rows in self.live.items():
                keep = [f for f in rows if batch.ts - f.ts < self.window_ns]
                if len(keep) != len(rows):
                    self.live[i] = keep
                    changed.add(i)
                self.next_expiry = min([self.next_expiry, *(f.ts + self.window_ns for f in keep)])
        for i in changed:
            self.value[i], self.ratio[i], self.net_insiders[i] = insider_summary(self.live.get(i, []))
