"""O(1)-per-bar rolling state, vectorised across symbols.

Every structure keeps one column per symbol and advances only the columns given in
``cols`` (the symbols that reported this bar): a stale symbol keeps its state. The engine
updates every column at once and names the stale ones in ``hold`` (positions in ``cols``):
their inputs are ignored and their state is restored, which costs O(stale) instead of a
gather and a scatter of the whole state. Each symbol has its own clock (``pushes``: how
many values it has seen), so windows are counted in the symbol's own bars, never in
wall-clock batches. While every symbol has seen every bar (``in_step``), all clocks agree
and a push writes and reads whole ring slots instead of per-symbol rows.

Per-call cost, not arithmetic, dominates at a few hundred symbols, so related series share
a structure (one ``push`` for ``[symbols, k]``), and arrays are laid out so numpy's inner
loop runs over symbols: broadcasting or slicing a short last axis makes it loop over
k-long rows, several times slower.

Windows follow pandas' ``min_periods=window`` rule: a statistic is NaN until the last
``window`` values are all finite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np


def _grow_cols(a: np.ndarray, n: int, fill: float | int, axis: int) -> np.ndarray:
    extra = n - a.shape[axis]
    if extra <= 0:
        return a
    shape = list(a.shape)
    shape[axis] = extra
    return np.concatenate([a, np.full(shape, fill, dtype=a.dtype)], axis=axis)


def put_rows(rows: np.ndarray, flat: np.ndarray, x: np.ndarray) -> None:
    """``rows[flat] = x`` for a C-contiguous ``[r, k]`` array. Each row is moved as one opaque
    ``k * 8``-byte item: numpy's fancy assignment of whole rows is several times slower."""
    if not (x.flags.c_contiguous and x.dtype == rows.dtype):  # a copy would eat the gain
        rows[flat] = x
        return
    item = np.dtype((np.void, rows.itemsize * rows.shape[1]))
    rows.view(item).reshape(-1)[flat] = x.reshape(-1, rows.shape[1]).view(item).reshape(-1)


def held(hold: np.ndarray | None) -> bool:
    """True when some rows of this push must keep their state (``hold`` non-empty)."""
    return hold is not None and hold.size > 0


@dataclass(slots=True)
class WindowStats:
    """Statistics of a window for the queried symbols: arrays ``[m, k]`` (``cov``: ``[m, pairs]``),
    with a leading window axis ``[W, m, ...]`` when the structure tracks several windows."""

    sum: np.ndarray
    mean: np.ndarray
    var: np.ndarray  # sample variance (ddof=1), as pandas' ``rolling().var()``
    cov: np.ndarray


class RollingMoments:
    """Rolling sums, means, variances and covariances of ``k`` series over ``window`` bars.

    ``window`` may be a tuple of lengths (ascending), e.g. ``(20, 60)``: the windows share
    one ring as deep as the longest (each value is written once; the value leaving a
    shorter window is read further back in the same ring) and every statistic comes out
    for all windows in one array op, so a family computes a feature for all its window
    lengths at once.

    Sums are kept of values minus a per-symbol shift (the symbol's recent level), so the
    variance of a price does not cancel catastrophically; ``refresh`` re-centres the shift
    and recomputes the sums exactly from the ring, which bounds the drift of add/remove
    updates (amortised O(1) when called every few windows).
    """

    def __init__(self, window: int | tuple[int, ...], n_symbols: int, k: int,
                 pairs: tuple[tuple[int, int], ...] = ()) -> None:
        self.multi = not isinstance(window, int)
        self.windows: tuple[int, ...] = tuple(window) if not isinstance(window, int) else (window,)
        if list(self.windows) != sorted(set(self.windows)) or self.windows[0] < 2:
            raise ValueError(f"windows must be ascending lengths >= 2: {window}")
        # int16 counts: adding the int8 difference of two bool masks is ~3x cheaper than int64 += bool
        if self.windows[-1] >= np.iinfo(np.int16).max:
            raise ValueError(f"window {window} too long")
        self.window = self.windows[-1]  # depth of the ring
        self.k, self.pairs = k, pairs
        n_win = len(self.windows)
        self._lens = np.array(self.windows, dtype=np.int64)[:, None]  # [W, 1]: how far back each window ends
        # the lengths as the stats broadcast them; a plain int for one window (same arithmetic as a scalar)
        self._w: int | np.ndarray = self.windows[0] if n_win == 1 else self._lens[:, :, None]
        self.ring = np.full((self.window, n_symbols, k), np.nan)
        self.pushes = np.zeros(n_symbols, dtype=np.int64)
        self.shift = np.zeros((n_symbols, k))  # shared by the windows
        self.s1 = np.zeros((n_win, n_symbols, k))
        self.s2 = np.zeros((n_win, n_symbols, k))
        self.finite = np.zeros((n_win, n_symbols, k), dtype=np.int16)
        self.sxy = np.zeros((n_win, n_symbols, len(pairs)))
        self.unstarted = n_symbols  # symbols never pushed: skips the first-value check once all started
        # every symbol has seen the same number of values (none ever stale): each push then
        # writes and reads whole ring slots, contiguous blocks instead of per-symbol rows
        self.in_step = True
        self._pa = np.array([a for a, _ in pairs], dtype=np.int64)
        self._pb = np.array([b for _, b in pairs], dtype=np.int64)

    def grow(self, n: int) -> None:
        self.unstarted += max(0, n - self.pushes.size)
        self.in_step = self.in_step and (n == self.pushes.size or not self.pushes.any())
        self.ring = _grow_cols(self.ring, n, np.nan, 1)
        self.pushes = _grow_cols(self.pushes, n, 0, 0)
        self.shift = _grow_cols(self.shift, n, 0.0, 0)
        for name in ("s1", "s2", "sxy"):
            setattr(self, name, _grow_cols(getattr(self, name), n, 0.0, 1))
        self.finite = _grow_cols(self.finite, n, 0, 1)

    def _sel(self, cols: np.ndarray) -> np.ndarray | slice:
        # Every symbol reporting is the common case: a slice updates in place, no gather/scatter.
        return slice(None) if cols.size == self.pushes.size else cols

    def push(self, cols: np.ndarray, x: np.ndarray, hold: np.ndarray | None = None) -> None:
        """Append one row ``x[m, k]`` for the symbols ``cols`` (NaN allowed), except rows ``hold``."""
        if not cols.size:
            return
        sel = self._sel(cols)
        n_seen = self.pushes[sel]
        if self.unstarted:
            first = n_seen == 0
            if held(hold):
                first[hold] = False
            if first.any():  # centre each symbol on its first value
                self.shift[cols[first]] = np.nan_to_num(x[first], nan=0.0, posinf=0.0, neginf=0.0)
                self.unstarted -= int(first.sum())
        # the value leaving each window: pushed ``length`` pushes ago (never written yet: NaN);
        # for the longest window that is the slot about to be overwritten
        if self.in_step and isinstance(sel, slice) and not held(hold):
            t = int(n_seen[0])
            old = self.ring[[(t - length) % self.window for length in self.windows]]  # [W, n, k]
            self.ring[t % self.window] = x
        else:
            self.in_step = False  # some symbol does not advance: the clocks part for good
            # (slot, symbol) pairs as row numbers of the ring seen as [depth * n, k]: np.take and
            # one flat index are several times faster than numpy's two-array fancy indexing.
            n_rows = self.ring.shape[1]
            flat = (n_seen % self.window) * n_rows + cols
            # slot (n_seen - length) mod depth, wrapped with a compare and an add (no integer modulo)
            leaving = flat[None] if not self.multi else flat - self._lens * n_rows
            if self.multi:
                leaving += (leaving < 0) * (self.window * n_rows)
            rows = self.ring.reshape(-1, self.k)
            old = np.take(rows, leaving, axis=0)  # [W, m, k]
            put_rows(rows, flat, x)
        self.pushes[sel] += 1
        sh = self.shift[sel]
        dn, do = x - sh, old - sh
        fn, fo = np.isfinite(dn), np.isfinite(do)
        if held(hold):  # put the held rows back: ring slot, clock, and zero deltas for the sums
            rows[flat[hold]] = old[-1, hold]  # (never in step: ``flat`` and ``rows`` are set)
            self.pushes[cols[hold]] -= 1
            fn[hold] = False
            fo[:, hold] = False
        np.copyto(dn, 0.0, where=~fn)
        np.copyto(do, 0.0, where=~fo)
        self.s1[:, sel] += dn - do
        # every column, even those read as sums only: slicing the last axis would make numpy
        # loop over short rows, several times slower than the whole contiguous block
        self.s2[:, sel] += dn * dn - do * do
        self.finite[:, sel] += fn.view(np.int8) - fo.view(np.int8)
        if self.pairs:
            self.sxy[:, sel] += dn[:, self._pa] * dn[:, self._pb] - do[..., self._pa] * do[..., self._pb]

    def refresh(self) -> None:
        """Re-centre on the latest finite value and recompute every sum from the ring."""
        n = self.ring.shape[1]
        self.in_step = bool(n == 0 or (self.pushes == self.pushes[0]).all())  # clocks may meet again
        last = self.ring[(self.pushes - 1) % self.window, np.arange(n)]
        self.shift = np.where(np.isfinite(last) & (self.pushes > 0)[:, None], last, self.shift)
        d = self.ring - self.shift[None]
        fin = np.isfinite(d)
        d = np.where(fin, d, 0.0)
        # pushes since each slot was written (0 = the latest); never-written slots are NaN anyway
        age = (self.pushes[None, :] - 1 - np.arange(self.window)[:, None]) % self.window
        for j, length in enumerate(self.windows):
            inside = (age < length)[:, :, None]
            dj, fj = (d, fin) if length == self.window else (np.where(inside, d, 0.0), fin & inside)
            self.s1[j] = dj.sum(axis=0)
            self.s2[j] = (dj * dj).sum(axis=0)
            self.finite[j] = fj.sum(axis=0, dtype=np.int16)
            if self.pairs:
                self.sxy[j] = (dj[:, :, self._pa] * dj[:, :, self._pb]).sum(axis=0)

    def stats(self, cols: np.ndarray) -> WindowStats:
        """Every statistic of every column for ``cols`` at once (a few array ops for all windows)."""
        sel = self._sel(cols)
        w = self._w
        # NaN the running sums of windows not yet full once: every statistic below inherits it
        # (np.maximum propagates NaN), instead of one mask per statistic
        s1 = np.where(self.finite[:, sel] == w, self.s1[:, sel], np.nan)
        total = s1 + w * self.shift[sel]
        var = np.maximum((self.s2[:, sel] - s1 * s1 / w) / (w - 1), 0.0)
        cov = np.empty((*total.shape[:2], len(self.pairs)))
        if self.pairs:
            cov = (self.sxy[:, sel] - s1[..., self._pa] * s1[..., self._pb] / w) / (w - 1)
        st = WindowStats(total, total / w, var, cov)
        return st if self.multi else WindowStats(st.sum[0], st.mean[0], st.var[0], st.cov[0])

    # --- single statistics of a one-window structure for the columns ``cols`` (NaN until the
    # window is full of finite values) ---

    def full(self, cols: np.ndarray, j: int) -> np.ndarray:
        return self.finite[0, self._sel(cols), j] == self.window

    def sum(self, cols: np.ndarray, j: int) -> np.ndarray:
        sel = self._sel(cols)
        s = self.s1[0, sel, j] + self.window * self.shift[sel, j]
        return np.where(self.full(cols, j), s, np.nan)

    def mean(self, cols: np.ndarray, j: int) -> np.ndarray:
        return self.sum(cols, j) / self.window

    def var(self, cols: np.ndarray, j: int) -> np.ndarray:
        """Sample variance (ddof=1), as pandas' ``rolling().var()``."""
        sel = self._sel(cols)
        s1 = self.s1[0, sel, j]
        v = (self.s2[0, sel, j] - s1 * s1 / self.window) / (self.window - 1)
        return np.where(self.full(cols, j), np.maximum(v, 0.0), np.nan)

    def std(self, cols: np.ndarray, j: int) -> np.ndarray:
        return np.sqrt(self.var(cols, j))

    def cov(self, cols: np.ndarray, p: int) -> np.ndarray:
        a, b = self.pairs[p]
        sel = self._sel(cols)
        c = (self.sxy[0, sel, p] - self.s1[0, sel, a] * self.s1[0, sel, b] / self.window) / (self.window - 1)
        return np.where(self.full(cols, a) & self.full(cols, b), c, np.nan)


class RollingExtrema:
    """Rolling maximum of the last ``window`` values and its age (0 = the latest bar).

    Streaming van Herk / Gil-Werman: each symbol's history is cut into blocks of
    ``window`` values; the window is the suffix of the previous block plus the prefix of
    the current one. Prefix maxima update in O(1); suffix maxima are built once per
    completed block (O(window) every ``window`` bars), so the cost is amortised O(1).
    Ties go to the most recent bar. Values must be finite (held rows may be anything).
    ``recent`` scans the ring for shorter windows (no structure of their own).

    ``signs`` holds one entry per tracked series (+1: maximum, -1: minimum), so e.g. the
    rolling high and the rolling low share one structure: ``push`` takes ``x[m, k]`` (or
    ``x[m]`` when k = 1) and ``query`` returns arrays of the same shape.
    """

    def __init__(self, window: int, n_symbols: int, signs: tuple[float, ...] = (1.0,)) -> None:
        k = len(signs)
        self.window, self.signs = window, np.array(signs, dtype=float)
        self.ring = np.zeros((window, n_symbols, k))
        self.pushes = np.zeros(n_symbols, dtype=np.int64)
        self.pre_val = np.zeros((n_symbols, k))
        # positions of the extremes as floats (exact below 2**53): ages come out as floats, no cast
        self.pre_idx = np.zeros((n_symbols, k))
        self.suf_val = np.zeros((window, n_symbols, k))
        self.suf_idx = np.zeros((window, n_symbols, k))
        self.in_step = True  # every symbol has seen as many values: whole ring slots (see RollingMoments)
        self._signs_rows = np.tile(self.signs, (n_symbols, 1))

    def grow(self, n: int) -> None:
        self.in_step = self.in_step and (n == self.pushes.size or not self.pushes.any())
        self._signs_rows = np.tile(self.signs, (n, 1))
        self.ring = _grow_cols(self.ring, n, 0.0, 1)
        self.suf_val = _grow_cols(self.suf_val, n, 0.0, 1)
        self.suf_idx = _grow_cols(self.suf_idx, n, 0, 1)
        self.pushes = _grow_cols(self.pushes, n, 0, 0)
        self.pre_val = _grow_cols(self.pre_val, n, 0.0, 0)
        self.pre_idx = _grow_cols(self.pre_idx, n, 0, 0)

    def push(self, cols: np.ndarray, x: np.ndarray, hold: np.ndarray | None = None) -> None:
        """Append ``x`` for the symbols ``cols`` except rows ``hold`` (their values may be NaN)."""
        w = self.window
        if not cols.size:
            return
        x = self._signed(x.reshape(cols.size, self.signs.size))
        sel = slice(None) if cols.size == self.pushes.size else cols  # all reporting: in place
        if self.in_step and isinstance(sel, slice) and not held(hold):
            self._push_in_step(x)
            return
        self.in_step = False  # some symbol does not advance: the clocks part for good
        t = self.pushes[cols]  # a copy: the count before this push
        p = t % w
        rows = self.ring.reshape(-1, self.signs.size)
        flat = p * self.ring.shape[1] + cols  # flat rows (see RollingMoments)
        keep = rows[flat[hold]] if held(hold) else None
        put_rows(rows, flat, x)
        pre_val, pre_idx = self.pre_val[sel], self.pre_idx[sel]  # views when sel is a slice
        better = x >= pre_val
        better[p == 0] = True  # a new block starts (row mask: no short broadcast loops, see _signed)
        done = p == w - 1
        if keep is not None:
            rows[flat[hold]] = keep
            better[hold] = False
            done[hold] = False
            self.pushes[cols[hold]] -= 1
        np.copyto(pre_val, x, where=better)
        np.copyto(pre_idx.T, t, where=better.T)  # [k, m] views: long inner loops
        if not isinstance(sel, slice):  # fancy indexing gave copies: write them back
            self.pre_val[cols] = pre_val
            self.pre_idx[cols] = pre_idx
        self.pushes[sel] += 1
        if done.any():
            self._build_suffix(cols[done], t[done] - (w - 1))

    def _signed(self, a: np.ndarray) -> np.ndarray:
        """``a[m, k] * signs``; with one row of signs per symbol when every symbol is in ``a``:
        broadcasting a k-long vector makes numpy loop over k-long rows, several times slower."""
        return a * (self._signs_rows if a.shape == self._signs_rows.shape else self.signs)

    def _push_in_step(self, x: np.ndarray) -> None:
        """``push`` for every symbol when all share one clock: one ring slot, scalar positions."""
        t = int(self.pushes[0])
        slot = t % self.window
        self.ring[slot] = x
        if slot == 0:  # a new block starts
            self.pre_val[:] = x
            self.pre_idx[:] = t
        else:
            better = x >= self.pre_val
            np.copyto(self.pre_val, x, where=better)
            np.copyto(self.pre_idx, float(t), where=better)
        self.pushes += 1
        if slot == self.window - 1:
            self._build_suffix(np.arange(self.pushes.size), np.full(self.pushes.size, t - slot))

    def _build_suffix(self, cols: np.ndarray, base: np.ndarray) -> None:
        w = self.window
        every = cols.size == self.pushes.size  # all symbols in step (none ever stale): no gather/scatter
        rev = (self.ring if every else np.take(self.ring, cols, axis=1))[::-1]  # rev[r]: block position w-1-r
        run = np.maximum.accumulate(rev, axis=0)
        rise = np.ones(rev.shape, dtype=bool)
        rise[1:] = run[1:] > run[:-1]  # first (= most recent) position reaching the running max
        r_of_max = np.maximum.accumulate(np.where(rise, np.arange(w)[:, None, None], 0), axis=0)
        sel = slice(None) if every else cols
        self.suf_val[:, sel] = run[::-1]
        self.suf_idx[:, sel] = (w - 1 - r_of_max[::-1]) + base[None, :, None]

    def query(self, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(extreme value, bars since it) for ``cols``; NaN until ``window`` values were seen."""
        w = self.window
        sel = slice(None) if cols.size == self.pushes.size else cols
        n_seen = self.pushes[sel]
        pv, pi = self.pre_val[sel], self.pre_idx[sel]
        if self.in_step and isinstance(sel, slice) and cols.size:  # one slot for all: views
            q0 = int(n_seen[0]) % w
            sv, si = self.suf_val[q0], self.suf_idx[q0]
            use_pre = np.ones(pv.shape, dtype=bool) if q0 == 0 else pv >= sv
        else:
            q = n_seen % w  # suffix of the previous block starts at the slot after the latest one
            flat = q * self.ring.shape[1] + cols
            k = self.signs.size
            sv = np.take(self.suf_val.reshape(-1, k), flat, axis=0)
            si = np.take(self.suf_idx.reshape(-1, k), flat, axis=0)
            use_pre = pv >= sv
            use_pre[q == 0] = True
        val = self._signed(np.where(use_pre, pv, sv))
        age = ((n_seen - 1) - np.where(use_pre, pi, si).T).T  # via [k, m]: long inner loops (see _signed)
        ok = n_seen >= w
        if not ok.all():  # warm-up only
            val, age = np.where(ok[:, None], val, np.nan), np.where(ok[:, None], age, np.nan)
        if self.signs.size == 1:
            return val[:, 0], age[:, 0]
        return val, age

    def recent(self, cols: np.ndarray, lengths: tuple[int, ...], ages: tuple[int, ...] = ()
               ) -> dict[int, tuple[np.ndarray, np.ndarray | None]]:
        """Per length in ``lengths`` (each < ``window``): (extreme value over the last ``length``
        values, bars since it; the age only for lengths in ``ages``, else None), ``[m, k]``
        arrays, NaN until ``length`` values were seen.

        A direct O(length) scan of the ring (one gather for all lengths): for short windows it
        is cheaper than a structure of their own, whose push, query and block rebuilds cost
        more per bar at this size. Ties go to the most recent bar, as ``query``.
        """
        longest = max(lengths)
        if longest >= self.window:
            raise ValueError(f"recent() reads at most {self.window - 1} values back, not {longest}")
        n_seen = self.pushes[slice(None) if cols.size == self.pushes.size else cols]
        if self.in_step and n_seen.size == self.pushes.size and cols.size:  # whole slots, latest first
            last = self.ring[(int(n_seen[0]) - 1 - np.arange(longest)) % self.window]  # [longest, m, k]
        else:
            n_rows = self.ring.shape[1]
            # flat row of the value j pushes back (j = 0 the latest), wrapped without an integer
            # modulo over the whole [longest, m] block (several times slower than a compare and an add)
            flat = (((n_seen - 1) % self.window) * n_rows + cols) - (np.arange(longest) * n_rows)[:, None]
            flat += (flat < 0) * (self.window * n_rows)
            last = np.take(self.ring.reshape(-1, self.signs.size), flat, axis=0)  # [longest, m, k], latest first
        out: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        for length in lengths:
            part = last[:length]
            val = self._signed(part.max(axis=0))
            age = part.argmax(axis=0).astype(float) if length in ages else None  # argmax: first = latest
            ok = n_seen >= length
            if not ok.all():  # warm-up only
                val = np.where(ok[:, None], val, np.nan)
                age = None if age is None else np.where(ok[:, None], age, np.nan)
            out[length] = (val, age)
        return out


StatePart = Union["RollingMoments", "RollingExtrema", "LagRing", "Ewma"]  # what families hand the engine


class LagRing:
    """The last ``depth`` values per symbol, to read lagged values (k bars ago)."""

    def __init__(self, depth: int, n_symbols: int) -> None:
        self.depth = depth
        self.ring = np.full((depth, n_symbols), np.nan)
        self.pushes = np.zeros(n_symbols, dtype=np.int64)

    def grow(self, n: int) -> None:
        self.ring = _grow_cols(self.ring, n, np.nan, 1)
        self.pushes = _grow_cols(self.pushes, n, 0, 0)

    def push(self, cols: np.ndarray, x: np.ndarray, hold: np.ndarray | None = None) -> None:
        """Append ``x`` for the symbols ``cols`` except rows ``hold``."""
        flat = (self.pushes[cols] % self.depth) * self.ring.shape[1] + cols
        ring = self.ring.reshape(-1)
        keep = ring[flat[hold]] if held(hold) else None
        ring[flat] = x
        self.pushes[slice(None) if cols.size == self.pushes.size else cols] += 1
        if keep is not None:
            ring[flat[hold]] = keep
            self.pushes[cols[hold]] -= 1

    def ago(self, cols: np.ndarray, k: int | np.ndarray) -> np.ndarray:
        """Value ``k`` pushes before the latest (0 = latest, ``k < depth``), NaN when not seen yet.
        ``k`` may be an array broadcasting against ``cols`` (per-symbol lags, or ``lags[:, None]``
        for a [lags, m] gather)."""
        n_seen = self.pushes[cols]
        n_rows = self.ring.shape[1]
        # wrap with a compare and an add: an integer modulo over the [lags, m] block is far slower
        flat = (((n_seen - 1) % self.depth) * n_rows + cols) - np.asarray(k) * n_rows
        flat += (flat < 0) * (self.depth * n_rows)
        return np.where(n_seen > k, np.take(self.ring.reshape(-1), flat), np.nan)


class Ewma:
    """Exponential moving averages (pandas ``ewm(span, adjust=False)``) of ``k`` series.

    NaN until ``min_periods`` values were seen (inputs are finite: only valid bars). State
    is one row per series (``[k, symbols]``): with ``[symbols, k]`` numpy would loop over
    k-long rows, several times slower.
    """

    def __init__(self, spans: tuple[float, ...], n_symbols: int, min_periods: tuple[int, ...]) -> None:
        self.alpha = np.array([2.0 / (s + 1.0) for s in spans])[:, None]
        self.min_periods = np.array(min_periods)[:, None]
        self.value = np.zeros((len(spans), n_symbols))
        self.count = np.zeros((len(spans), n_symbols), dtype=np.int64)

    def grow(self, n: int) -> None:
        self.value = _grow_cols(self.value, n, 0.0, 1)
        self.count = _grow_cols(self.count, n, 0, 1)

    def push(self, cols: np.ndarray, x: np.ndarray, which: slice = slice(None),
             hold: np.ndarray | None = None) -> np.ndarray:
        """Update series ``which`` of ``cols`` with ``x[m, len(which)]`` (or ``x[m, 1]``: one input
        for every series; rows ``hold`` keep their state); returns their values ``[m, len(which)]``."""
        every = cols.size == self.value.shape[1]
        v = self.value[which, slice(None) if every else cols]  # a view of the state when every symbol
        c = self.count[which, slice(None) if every else cols]
        a = self.alpha[which]
        xt = x.T  # [series, m]
        ok = np.isfinite(xt)
        if held(hold):
            ok[:, hold] = False
        new = (1.0 - a) * v + a * xt
        np.copyto(new, xt, where=c == 0)  # a series starts at its first value
        np.copyto(v, new, where=ok)
        c += ok
        if not every:  # fancy indexing gave copies: write them back
            self.value[which, cols] = v
            self.count[which, cols] = c
        return np.where(c >= self.min_periods[which], v, np.nan).T
