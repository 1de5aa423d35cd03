"""Per-batch inputs shared by every family: the symbols' bars and a few derived series.

``Core`` owns the state several families need (previous close, lagged closes, true range
/ ATR, return volatility, the index return aligned to each symbol's own bars), so a
family can be switched off without breaking another one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from algobotd.domain import BarBatch, IntrabarFlow
from algobotd.features.rolling import LagRing, RollingExtrema, RollingMoments, StatePart

CLOSE_DEPTH = 61  # ret_60 needs the close 60 bars ago
LAGS = (1, 5, 10, 20, 60)  # closes k bars back, gathered once per batch
_LAG_ROWS = np.array(LAGS)[:, None]
EXTREMES_WINDOW = 60  # rolling high, low and highest volume: one structure for both bar families
HIGH, LOW, VOLUME = range(3)  # columns of ``BatchInputs.extremes``


def safe_ratio(num: np.ndarray, den: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """num / den, ``fill`` where den is 0 (NaN stays NaN). The batch reference uses the same rule."""
    out = np.full(np.shape(num), fill, dtype=float)
    np.divide(num, den, out=out, where=den != 0.0)  # NaN != 0, so NaN propagates
    return out


def grow_1d(a: np.ndarray, n: int, fill: float | int) -> np.ndarray:
    """``a`` extended to length ``n`` with ``fill`` (new symbols start empty)."""
    return np.concatenate([a, np.full(max(0, n - a.size), fill, dtype=a.dtype)])


def tiny(scale: np.ndarray) -> np.ndarray:
    """A variance below this is rounding noise of a constant window (treated as zero).

    ``scale`` is the window mean; the absolute floor covers series centred on zero (returns).
    """
    return 1e-14 * (scale * scale) + 1e-26


@dataclass(slots=True)
class BatchInputs:
    """Rows ``cols`` of one batch plus derived series. The engine passes every symbol
    (``cols`` = all of them) and names the stale ones in ``hold`` (positions in ``cols``):
    their rows hold garbage, their state must not advance and the engine discards their
    outputs (their row of ``X`` keeps its last value)."""

    ts: int
    cols: np.ndarray
    o: np.ndarray
    h: np.ndarray
    l: np.ndarray
    c: np.ndarray
    v: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    flow: IntrabarFlow | None
    prev_c: np.ndarray  # previous valid close, NaN on a symbol's first bar
    r: np.ndarray  # log return since the previous valid bar
    tr: np.ndarray  # true range (NaN on the first bar)
    atr14: np.ndarray  # mean true range over 14 bars (price units)
    std20: np.ndarray  # std of r over 20 bars
    idx_r: np.ndarray  # index log return over the same span as r (NaN without an index)
    idx_log: float  # latest known log level of the index (NaN if never seen)
    lagged: dict[int, np.ndarray]  # close k valid bars ago (k in LAGS), NaN before
    hold: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # stale rows
    # (values, bars since) of the 60-bar high, low and highest volume, [m, 3] each; None if unused
    extremes: tuple[np.ndarray, np.ndarray] | None = None
    extremes_state: RollingExtrema | None = None  # its ring serves shorter windows (``recent``)

    def flow_field(self, name: str) -> np.ndarray:
        if self.flow is None:
            return np.full(self.cols.size, np.nan)
        a = np.asarray(getattr(self.flow, name), dtype=float)
        return a if a.size == self.cols.size else a[self.cols]


class Core:
    """``own_windows=False`` when the price/volume family runs: its 14- and 20-bar windows
    already hold the true range and the returns, and it fills ``atr14``/``std20`` itself."""

    def __init__(self, n_symbols: int, own_windows: bool = True, extremes: bool = True) -> None:
        self.closes = LagRing(CLOSE_DEPTH, n_symbols)
        # one push and one query for three series (the per-call cost dominates at this size)
        self.extremes = RollingExtrema(EXTREMES_WINDOW, n_symbols, (1.0, -1.0, 1.0)) if extremes else None
        self.w14 = RollingMoments(14, n_symbols, 1) if own_windows else None  # true range
        self.w20 = RollingMoments(20, n_symbols, 1) if own_windows else None  # log return
        self.idx_at_last = np.full(n_symbols, np.nan)  # index log level at each symbol's last bar
        self.idx_log = np.nan

    def parts(self) -> list[StatePart]:
        return [p for p in (self.closes, self.w14, self.w20, self.extremes) if p is not None]

    def grow(self, n: int) -> None:
        for part in self.parts():
            part.grow(n)
        self.idx_at_last = grow_1d(self.idx_at_last, n, np.nan)

    def step(self, batch: BarBatch, cols: np.ndarray, index_level: float, hold: np.ndarray) -> BatchInputs:
        """Advance the shared state for ``cols`` except rows ``hold`` (see ``BatchInputs``)."""
        if np.isfinite(index_level):
            self.idx_log = float(np.log(index_level))
        every = cols.size == len(batch.close)  # all symbols reported: read the arrays, no gather

        def pick(a: np.ndarray) -> np.ndarray:
            a = np.asarray(a, dtype=float)
            return a if every else a[cols]  # read-only from here on: never written to

        o, h, l, c, v = (pick(a) for a in (batch.open, batch.high, batch.low, batch.close, batch.volume))
        self.closes.push(cols, c, hold)
        # one gather for every lag after the push; lag 1 is the previous valid close (a held row's
        # lags are off by one, but its outputs are discarded and its state does not advance)
        lagged = self.closes.ago(cols, _LAG_ROWS)
        prev_c = lagged[LAGS.index(1)]
        r = np.log(c / prev_c)
        tr = np.maximum(h - l, np.maximum(np.abs(h - prev_c), np.abs(l - prev_c)))
        tr = np.where(np.isfinite(prev_c), tr, np.nan)
        atr14 = std20 = np.full(cols.size, np.nan)  # filled by the price/volume family otherwise
        if self.w14 is not None and self.w20 is not None:
            self.w14.push(cols, tr[:, None], hold)
            self.w20.push(cols, r[:, None], hold)
            atr14, std20 = self.w14.mean(cols, 0), self.w20.std(cols, 0)
        extremes = None
        if self.extremes is not None:
            self.extremes.push(cols, np.stack([h, l, v], axis=1), hold)
            extremes = self.extremes.query(cols)
        idx_r = self.idx_log - self.idx_at_last[cols]
        keep = self.idx_at_last[cols[hold]]
        self.idx_at_last[cols] = self.idx_log
        self.idx_at_last[cols[hold]] = keep
        return BatchInputs(
            ts=batch.ts, cols=cols, o=o, h=h, l=l, c=c, v=v,
            bid=pick(batch.bid), ask=pick(batch.ask),
            flow=batch.flow, prev_c=prev_c, r=r, tr=tr, atr14=atr14, std20=std20, idx_r=idx_r,
            idx_log=self.idx_log,
            lagged=dict(zip(LAGS, lagged)), hold=hold, extremes=extremes,
            extremes_state=self.extremes)
