"""The incremental feature engine: ``update(batch)`` once per bar batch -> ``X[symbols, features]``.

State lives in arrays indexed by symbol and advances in O(1) per symbol and feature
(the two O(window) exceptions are documented where they are). Only symbols with a valid
bar advance; a stale symbol keeps its state and its row of ``X`` stays as it was
(``stale`` says so). Every batch updates all symbols at once and then puts the stale
ones' state back (``hold``): O(stale) fix-ups instead of gathering and scattering the
whole state. A feature is NaN until its window is full; ``ready`` is True once a
symbol has seen enough bars for every bar-only feature. New symbols in a batch grow
every array. Bad bars are dropped at the edge and counted in ``dropped``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from algobotd.config import ConfigError, FeaturesConfig
from algobotd.domain import BarBatch, IntrabarFlow
from algobotd.features import alternative, cross_asset, microstructure, price_volume
from algobotd.features.core import Core
from algobotd.features.cross_asset import RefRoles
from algobotd.features.registry import Registry
from algobotd.features.rolling import RollingMoments, StatePart
from algobotd.features.sequence import SequenceBuffer
from algobotd.symbols import SymbolIndex

_FLOW_FIELDS = ("ofi", "bid_size", "ask_size", "buy_volume", "sell_volume")


def full_registry() -> Registry:
    """Every feature the engine can compute, in column order."""
    return Registry([*price_volume.specs(), *microstructure.specs(), *cross_asset.specs(),
                     *alternative.specs()])


def configured_registry(cfg: FeaturesConfig) -> Registry:
    """The registry without the families and features the config switches off."""
    try:
        return full_registry().select(cfg.disabled_families, cfg.disabled)
    except KeyError as exc:
        raise ConfigError("features.disabled", str(exc.args[0])) from None


def roles_from(cfg: FeaturesConfig) -> RefRoles:
    pairs = tuple((sym, sector) for sym, _, sector in (item.partition("=") for item in cfg.sectors))
    return RefRoles(cfg.index, cfg.vol_index, cfg.curve_long, cfg.curve_short, cfg.curve_kind, cfg.dollar, pairs)


def bar_problems(o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray,
                 v: np.ndarray) -> dict[str, np.ndarray]:
    """Masks of bad bars by reason (first matching reason only), as BarClock's edge checks."""
    nan = ~(np.isfinite(o) & np.isfinite(h) & np.isfinite(l) & np.isfinite(c) & np.isfinite(v))
    with np.errstate(invalid="ignore"):
        nonpos = ~nan & ((o <= 0) | (h <= 0) | (l <= 0) | (c <= 0))
        hl = ~nan & ~nonpos & (h < l)
        ohlc = ~nan & ~nonpos & ~hl & ((h < np.maximum(o, c)) | (l > np.minimum(o, c)))
        negv = ~nan & ~nonpos & ~hl & ~ohlc & (v < 0)
    return {"nan": nan, "non_positive_price": nonpos, "high_below_low": hl, "ohlc_inconsistent": ohlc,
            "negative_volume": negv}


def bars_look_clean(o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray,
                    valid: np.ndarray) -> bool:
    """True when no valid bar has any of ``bar_problems``: one combined check per batch (a NaN
    fails every comparison; finite prices with 0 < l <= min(o, c) <= max(o, c) <= h are positive
    and ordered), so the per-reason masks are only built when something is wrong."""
    ok = (l > 0) & (l <= np.minimum(o, c)) & (np.maximum(o, c) <= h) & (v >= 0)
    ok &= np.isfinite(h)
    ok &= np.isfinite(v)
    return bool(ok.all() or ok[valid].all())


def aligned(batch: BarBatch, pos: np.ndarray, symbols: tuple[str, ...]) -> BarBatch:
    """The batch with its arrays in engine column order (symbol ``batch.symbols[k]`` at ``pos[k]``);
    engine symbols missing from the batch are stale. Only built when the orders differ."""
    n = len(symbols)

    def put(a: np.ndarray) -> np.ndarray:
        out = np.full(n, np.nan)
        out[pos] = a
        return out

    valid = np.zeros(n, dtype=bool)
    valid[pos] = batch.valid
    f = batch.flow
    flow = None if f is None else IntrabarFlow(*(put(getattr(f, k)) for k in _FLOW_FIELDS))
    return BarBatch(batch.ts, symbols, put(batch.open), put(batch.high), put(batch.low), put(batch.close),
                    put(batch.volume), valid, put(batch.bid), put(batch.ask), batch.refs, batch.news, flow,
                    batch.options, batch.stale_sources, batch.insider)


class FeatureEngine:
    def __init__(self, cfg: FeaturesConfig | None = None, symbols: Sequence[str] = ()) -> None:
        self.cfg = cfg = cfg or FeaturesConfig()
        self.all_features = full_registry()
        self.registry = configured_registry(cfg)
        fams = {s.family for s in self.registry}
        self.symbols = SymbolIndex()
        n = 0
        self.pv = price_volume.PriceVolume(n) if "price_volume" in fams else None
        self.core = Core(n, own_windows=self.pv is None, extremes=bool(fams & {"price_volume", "microstructure"}))
        self.ms = microstructure.Microstructure(n) if "microstructure" in fams else None
        self.roles = roles_from(cfg)
        self.ca = cross_asset.CrossAsset(n, self.roles)
        self.alt = alternative.Alternative(n, cfg.news_half_life_seconds) if "alternative" in fams else None
        bar_only = [s.window for s in self.registry if set(s.inputs) <= {"bars"}]
        self.warmup = max(bar_only, default=1)  # valid bars before ``ready``
        self.X = np.full((0, len(self.registry)), np.nan)
        self.bars_seen = np.zeros(0, dtype=np.int64)
        self.ready = np.zeros(0, dtype=bool)
        self.stale = np.zeros(0, dtype=bool)
        # float32: what the sequence models consume; halves the buffer (the largest per-symbol state)
        self.sequence = SequenceBuffer(cfg.sequence_length, 0, len(self.registry), dtype=np.float32)
        self.dropped: dict[str, int] = {}
        self.last_ts: int | None = None
        self.batches = 0
        self._batch_symbols: tuple[str, ...] | None = None
        self._pos = np.zeros(0, dtype=np.int64)
        self._identity = True
        self._cols = np.zeros(0, dtype=np.int64)  # every engine column, cached
        self.add_symbols(symbols)

    # --- symbols ---------------------------------------------------------------------------------

    def _parts(self) -> list[StatePart]:
        parts = self.core.parts()
        for fam in (self.pv, self.ms):
            if fam is not None:
                parts += fam.parts()
        return parts

    def add_symbols(self, symbols: Sequence[str]) -> None:
        """Append new symbols (existing ones are kept); every array grows to the new size."""
        for s in symbols:
            self.symbols.add(s)
        n = len(self.symbols)
        if n == self.X.shape[0]:
            return
        for family in (self.core, self.pv, self.ms, self.alt):
            if family is not None:
                family.grow(n)
        self.ca.grow_symbols(self.symbols.symbols)
        extra = n - self.X.shape[0]
        self.X = np.concatenate([self.X, np.full((extra, self.X.shape[1]), np.nan)])
        self.bars_seen = np.concatenate([self.bars_seen, np.zeros(extra, dtype=np.int64)])
        self.ready = np.concatenate([self.ready, np.zeros(extra, dtype=bool)])
        self.stale = np.concatenate([self.stale, np.ones(extra, dtype=bool)])
        self.sequence.grow(n)

    def _align(self, batch: BarBatch) -> BarBatch:
        if batch.symbols != self._batch_symbols:
            self.add_symbols(batch.symbols)
            self._pos = np.array([self.symbols[s] for s in batch.symbols], dtype=np.int64)
            self._identity = bool(np.array_equal(self._pos, np.arange(len(batch.symbols))))
            self._batch_symbols = batch.symbols
        # the families read every engine column: a batch in engine order with every symbol is used as is
        if self._identity and len(batch.symbols) == len(self.symbols):
            return batch
        return aligned(batch, self._pos, self.symbols.symbols)

    def _count(self, reason: str, k: int = 1) -> None:
        if k:
            self.dropped[reason] = self.dropped.get(reason, 0) + k

    # --- per batch -------------------------------------------------------------------------------

    def update(self, batch: BarBatch) -> np.ndarray:
        """Consume one batch (bars <= batch.ts only); returns ``X`` rows in the batch's symbol order."""
        # NaN and division by zero are expected (warm-up, missing inputs) and handled by
        # explicit rules; one errstate per batch is cheaper than one per helper call.
        with np.errstate(all="ignore"):
            return self._update(batch)

    def _update(self, batch: BarBatch) -> np.ndarray:
        if self.last_ts is not None and batch.ts <= self.last_ts:
            self._count("duplicate_batch" if batch.ts == self.last_ts else "out_of_order_batch")
            return self.rows(batch)
        self.last_ts = batch.ts
        b = self._align(batch)
        o, h, l, c, v = (np.asarray(a, dtype=float) for a in (b.open, b.high, b.low, b.close, b.volume))
        valid = np.zeros(self.X.shape[0], dtype=bool)
        valid[: len(b.valid)] = b.valid
        if not bars_look_clean(o, h, l, c, v, valid[: o.size]):  # rare: find and count them by reason
            problems = bar_problems(o, h, l, c, v)
            bad = np.zeros_like(valid)
            for reason, mask in problems.items():
                hit = mask & valid[: mask.size]
                self._count(reason, int(hit.sum()))
                bad[: hit.size] |= hit
            valid &= ~bad
        if self._cols.size != valid.size:
            self._cols = np.arange(valid.size)
        cols, hold = self._cols, np.flatnonzero(~valid)  # every symbol; the stale ones held
        self.ca.step_market(b.refs)
        if self.alt is not None:
            self.alt.step_events(b, self.symbols, self.dropped)
        index_level = float(b.refs.get(self.roles.index, np.nan))
        x = self.core.step(b, cols, index_level if index_level > 0 else np.nan, hold)
        ret_20 = np.log(x.c / x.lagged[20])
        values: dict[str, np.ndarray] = {}
        if self.pv is not None:
            values.update(self.pv.update(x))
        if self.ms is not None:
            values.update(self.ms.update(x, self.core.closes.ago))
        values.update(self.ca.update(x, ret_20))
        if self.alt is not None:
            values.update(self.alt.update(x))
        # [features, symbols] in one call, then one transposing copy: cheaper than np.stack /
        # column_stack of 85 arrays (a Python-level expand_dims per array)
        by_feature = np.array([values[name] for name in self.registry.names], dtype=float)
        kept = self.X[hold]  # stale rows keep their last features
        np.copyto(self.X, by_feature.T)
        self.X[hold] = kept
        self.bars_seen += valid
        self.ready = self.bars_seen >= self.warmup
        self.stale = ~valid
        self.sequence.push(self.X, valid)
        self.batches += 1
        if self.batches % self.cfg.refresh_bars == 0:
            for part in self._parts():
                if isinstance(part, RollingMoments):
                    part.refresh()
        return self.rows(batch)

    def rows(self, batch: BarBatch) -> np.ndarray:
        """``X`` in the batch's symbol order (a view when the orders agree)."""
        if self._identity and batch.symbols == self._batch_symbols:
            return self.X[: len(batch.symbols)]
        return self.X[np.array([self.symbols[s] for s in batch.symbols], dtype=np.int64)]

    @property
    def names(self) -> tuple[str, ...]:
        return self.registry.names

    def status(self) -> dict[str, object]:
        """Counters for logs and the control socket."""
        return {"features": len(self.registry), "symbols": len(self.symbols), "batches": self.batches,
                "ready": int(self.ready.sum()), "dropped": dict(self.dropped),
                "missing_refs": list(self.ca.missing), "ref_values_dropped": self.ca.dropped}

    @property
    def nbytes(self) -> int:
        """Bytes of per-symbol state (rings, sums, X, sequence buffer)."""
        total = self.X.nbytes + self.sequence.nbytes + (self.ms.prev.nbytes if self.ms is not None else 0)
        for part in self._parts():
            total += sum(a.nbytes for a in vars(part).values() if isinstance(a, np.ndarray))
        return total
