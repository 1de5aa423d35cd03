"""Alternative-data family: news sentiment and options flow.

News items (``BarBatch.news``) and option-chain snapshots (``BarBatch.options``) are
events, not bars: their state advances every batch, even for a symbol whose bar is stale.
The per-event Python loop is over events (a few per batch), never over symbols.
"""

from __future__ import annotations

import math

import numpy as np

from algobotd.domain import NS_PER_SECOND, BarBatch
from algobotd.features.core import BatchInputs, grow_1d
from algobotd.features.registry import FeatureSpec
from algobotd.symbols import SymbolIndex

FAMILY = "alternative"
PCR_ALPHA = 0.2  # EWMA weight of the newest snapshot's put/call ratio
NO_NEWS = np.iinfo(np.int64).min


def specs() -> list[FeatureSpec]:
    news, opts = ("news",), ("options",)
    return [
        FeatureSpec("news_sent", FAMILY, 1, news, doc="sum of news sentiment, decayed by features.news_half_life_seconds"),
        FeatureSpec("news_count", FAMILY, 1, news, doc="number of news items, decayed the same way"),
        FeatureSpec("news_age", FAMILY, 1, news, doc="log1p(minutes since the latest news item), NaN before any"),
        FeatureSpec("opt_pcr", FAMILY, 1, opts, doc="log((put volume + 1) / (call volume + 1)) of the latest snapshot"),
        FeatureSpec("opt_pcr_ema", FAMILY, 1, opts, doc="EWMA (alpha 0.2) of opt_pcr over snapshots"),
        FeatureSpec("opt_iv_skew", FAMILY, 1, opts, doc="25-delta put IV - 25-delta call IV"),
        FeatureSpec("opt_atm_iv", FAMILY, 1, opts, doc="at-the-money implied volatility"),
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
        self.last_ts: int | None = None
        self.stale_groups: frozenset[str] = frozenset()

    def grow(self, n: int) -> None:
        self.sent, self.count = grow_1d(self.sent, n, 0.0), grow_1d(self.count, n, 0.0)
        self.last_news_ts = grow_1d(self.last_news_ts, n, NO_NEWS)
        for name in ("pcr", "pcr_ema", "skew", "atm_iv"):
            setattr(self, name, grow_1d(getattr(self, name), n, np.nan))

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
        for snap in batch.options:
            i = index.get(snap.symbol)
            if i is None:
                dropped["options_unknown_symbol"] = dropped.get("options_unknown_symbol", 0) + 1
                continue
            nums = (snap.call_volume, snap.put_volume, snap.atm_iv, snap.put_iv_25d, snap.call_iv_25d)
            if not all(math.isfinite(v) for v in nums) or min(nums[:2]) < 0 or min(nums[2:]) <= 0:
                dropped["options_invalid"] = dropped.get("options_invalid", 0) + 1
                continue
            pcr = math.log((snap.put_volume + 1.0) / (snap.call_volume + 1.0))
            prev = self.pcr_ema[i]
            self.pcr_ema[i] = pcr if math.isnan(prev) else (1.0 - PCR_ALPHA) * prev + PCR_ALPHA * pcr
            self.pcr[i] = pcr
            self.skew[i] = snap.put_iv_25d - snap.call_iv_25d
            self.atm_iv[i] = snap.atm_iv

    def update(self, x: BatchInputs) -> dict[str, np.ndarray]:
        cols = x.cols
        last = self.last_news_ts[cols]
        minutes = np.where(last == NO_NEWS, np.nan, (x.ts - last) / (60.0 * NS_PER_SECOND))
        out = {
            "news_sent": self.sent[cols].copy(),
            "news_count": self.count[cols].copy(),
            "news_age": np.log1p(minutes),
            "opt_pcr": self.pcr[cols].copy(),
            "opt_pcr_ema": self.pcr_ema[cols].copy(),
            "opt_iv_skew": self.skew[cols].copy(),
            "opt_atm_iv": self.atm_iv[cols].copy(),
        }
        for group in self.stale_groups:  # state keeps advancing; only the output is masked
            for name in _GROUP_FEATURES.get(group, ()):
                out[name] = np.full(cols.size, np.nan)
        return out


_GROUP_FEATURES = {"news": ("news_sent", "news_count", "news_age"),
                   "options": ("opt_pcr", "opt_pcr_ema", "opt_iv_skew", "opt_atm_iv")}
