"""Yardstick models: a momentum z-score (the default until the ensemble) and an SMA crossover.

Both update in O(1) per symbol per bar with running sums over ring buffers, vectorised
across symbols; every report compares the ensemble against the momentum baseline.
"""

from __future__ import annotations

import numpy as np

from algobotd.config import ModelConfig
from algobotd.domain import BarBatch
from algobotd.models.base import CloseWindow, Prediction


class MomentumModel:
    """score = log(C_t / C_{t-L}) / (sigma_bar * sqrt(L)): momentum in units of its own noise."""

    def __init__(self, cfg: ModelConfig, n_symbols: int) -> None:
        self.cfg = cfg
        self.lookback = cfg.lookback
        self.vol_window = cfg.vol_window
        self.entry = cfg.entry_z
        self.exit = cfg.exit_z
        self.model_id = f"baseline-momentum-L{cfg.lookback}-V{cfg.vol_window}"
        self.warmup = max(cfg.lookback, cfg.vol_window) + 1
        self.closes = CloseWindow(self.lookback + 1, n_symbols)
        self.rets = CloseWindow(self.vol_window, n_symbols)  # ring of log returns
        self.sum = np.zeros(n_symbols)
        self.sumsq = np.zeros(n_symbols)
        self.sqrt_lookback = float(np.sqrt(self.lookback))
        self.weights = {self.model_id: 1.0}
        # every symbol has seen the same c >= 1 closes and c - 1 returns (see _in_lockstep)
        self._lockstep = False

    def update(self, batch: BarBatch) -> Prediction:
        n = len(batch)
        if n > self.sum.size:
            self._grow(n)
        close = batch.close
        valid = batch.valid & (close > 0)
        if n == self.sum.size and valid.all() and self._in_lockstep():
            return self._update_lockstep(close)
        self._lockstep = False
        prev = self.closes.ago(0)
        self.closes.push(close, valid)
        has_prev = valid & (prev > 0)  # False for NaN: the first bar of a symbol has no return
        r = np.log(np.where(has_prev, close / np.where(has_prev, prev, 1.0), 1.0))
        cols, old = self.rets.push(r, has_prev)
        old[np.isnan(old)] = 0.0  # empty slots evict nothing
        if cols is self.rets.all_columns:  # every symbol reported: whole-array ops, no gathers
            self.sum += r - old
            self.sumsq += r * r - old * old
        else:
            new = r[cols]
            self.sum[cols] += new - old
            self.sumsq[cols] += new * new - old * old
        w = np.minimum(self.rets.count, self.vol_window)
        ready = (self.rets.count >= self.vol_window) & (self.closes.count > self.lookback)
        var = np.zeros(n)
        np.divide(self.sumsq - self.sum * self.sum / np.maximum(w, 1), np.maximum(w - 1, 1), out=var, where=ready)
        sigma = np.sqrt(np.maximum(var, 0.0))
        ready &= sigma > 0
        mom = np.log(self.closes.ago(0) / self.closes.ago(self.lookback), where=ready, out=np.zeros(n))
        score = np.full(n, np.nan)
        np.divide(mom, sigma * self.sqrt_lookback, out=score, where=ready)
        confidence = np.minimum(1.0, np.abs(mom) / (3.0 * self.sqrt_lookback * np.where(ready, sigma, 1.0)))
        return Prediction(score, confidence, ready, self.weights)

    def _in_lockstep(self) -> bool:
        """True when every symbol has the same c >= 1 closes and c - 1 returns (checked after
        any batch that went through the general path; a run of full batches keeps it)."""
        if not self._lockstep:
            c, rc = self.closes.count, self.rets.count
            self._lockstep = bool(c.size) and c[0] >= 1 and self.closes._in_step() and self.rets._in_step() \
                and rc[0] == c[0] - 1
        return self._lockstep

    def _update_lockstep(self, close: np.ndarray) -> Prediction:
        """``update`` for a batch where every symbol reports a positive close and all are in
        lockstep: the ring slots are one row each, nothing needs masking, and every expression
        is the general path's with its masks all True -- the same numbers bit for bit, at
        about half the numpy calls."""
        closes, rets = self.closes, self.rets
        c = int(closes.count[0])  # closes seen so far (>= 1), returns seen: c - 1
        prev = closes.buf[(c - 1) % closes.size]
        r = np.log(close / prev)
        closes.buf[c % closes.size] = close
        closes.count += 1
        seen = c - 1  # returns before this one
        row = rets.buf[seen % rets.size]
        if seen >= self.vol_window:  # a full window evicts its oldest return
            old = row.copy()
            self.sum += r - old
            self.sumsq += r * r - old * old
        else:  # an empty slot evicts 0 (exactly the general path's increments)
            self.sum += r - 0.0
            self.sumsq += r * r - 0.0
        row[:] = r
        rets.count += 1
        n = close.size
        w = min(seen + 1, self.vol_window)
        if not (seen + 1 >= self.vol_window and c + 1 > self.lookback):
            return Prediction(np.full(n, np.nan), np.zeros(n), np.zeros(n, dtype=bool), self.weights)
        var = (self.sumsq - self.sum * self.sum / max(w, 1)) / max(w - 1, 1)
        sigma = np.sqrt(np.maximum(var, 0.0))
        ready = sigma > 0
        if not ready.all():  # a flat symbol: fall back to the masked expressions
            lagged = closes.buf[(c - self.lookback) % closes.size]
            mom = np.log(close / lagged, where=ready, out=np.zeros(n))
            score = np.full(n, np.nan)
            np.divide(mom, sigma * self.sqrt_lookback, out=score, where=ready)
            confidence = np.minimum(1.0, np.abs(mom) / (3.0 * self.sqrt_lookback * np.where(ready, sigma, 1.0)))
            return Prediction(score, confidence, ready, self.weights)
        mom = np.log(close / closes.buf[(c - self.lookback) % closes.size])
        score = mom / (sigma * self.sqrt_lookback)
        confidence = np.minimum(1.0, np.abs(mom) / (3.0 * self.sqrt_lookback * sigma))
        return Prediction(score, confidence, ready, self.weights)

    def _grow(self, n: int) -> None:
        self._lockstep = False
        self.closes.grow(n)
        self.rets.grow(n)
        extra = n - self.sum.size
        self.sum = np.concatenate([self.sum, np.zeros(extra)])
        self.sumsq = np.concatenate([self.sumsq, np.zeros(extra)])


def momentum_tape(cfg: ModelConfig, close: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score, confidence, ready) ``[T, K]`` of :class:`MomentumModel` fed the rows of ``close``
    one by one, computed for all bars at once -- bit for bit the same numbers.

    Row t depends on rows <= t only. The running sums are cumulative sums of the same
    increments in the same order (``np.add.accumulate`` adds sequentially), so nothing differs
    from the streaming update. Only for bars where every symbol reports a positive close (Monte
    Carlo paths); anything else must go through ``update``.
    """
    close = np.asarray(close, dtype=float)
    if close.ndim != 2 or not (close > 0).all():  # also rejects NaN (a symbol that did not report)
        raise ValueError("momentum_tape needs a [bars, symbols] matrix of positive closes")
    T, K = close.shape
    L, V = cfg.lookback, cfg.vol_window
    r = np.log(close[1:] / close[:-1])  # r[j]: the j-th return, pushed at bar j + 1
    old = np.zeros_like(r)
    old[V:] = r[: max(0, len(r) - V)]  # the return leaving the vol window (an empty slot evicts 0)
    # the streaming sums start at 0.0 and gain one increment per bar from bar 1 on
    inc = np.zeros((T, K))
    inc[1:] = r - old
    total = np.add.accumulate(inc, axis=0)
    inc[1:] = r * r - old * old
    total_sq = np.add.accumulate(inc, axis=0)
    t = np.arange(T)
    w = np.minimum(t, V)[:, None]  # returns seen at bar t, capped at the window
    ready = np.broadcast_to(((t >= V) & (t + 1 > L))[:, None], (T, K)).copy()
    var = np.zeros((T, K))
    np.divide(total_sq - total * total / np.maximum(w, 1), np.maximum(w - 1, 1), out=var, where=ready)
    sigma = np.sqrt(np.maximum(var, 0.0))
    ready &= sigma > 0
    lagged = np.ones((T, K))
    lagged[L:] = close[: max(0, T - L)]  # close L bars back; only read where ready (t >= L)
    mom = np.log(close / lagged, where=ready, out=np.zeros((T, K)))
    sqrt_lookback = float(np.sqrt(L))
    score = np.full((T, K), np.nan)
    np.divide(mom, sigma * sqrt_lookback, out=score, where=ready)
    confidence = np.minimum(1.0, np.abs(mom) / (3.0 * sqrt_lookback * np.where(ready, sigma, 1.0)))
    return score, confidence, ready


class SmaCrossModel:
    """score = SMA(fast) / SMA(slow) - 1: long while the fast average is above the slow one."""

    def __init__(self, cfg: ModelConfig, n_symbols: int) -> None:
        self.fast, self.slow = cfg.fast, cfg.slow
        self.entry = 0.0
        self.exit = 0.0
        self.model_id = f"sma-cross-{cfg.fast}-{cfg.slow}"
        self.warmup = cfg.slow
        self.closes = CloseWindow(cfg.slow, n_symbols)
        self.sum_fast = np.zeros(n_symbols)
        self.sum_slow = np.zeros(n_symbols)

    def update(self, batch: BarBatch) -> Prediction:
        n = len(batch)
        if n > self.sum_fast.size:
            self.closes.grow(n)
            extra = n - self.sum_fast.size
            self.sum_fast = np.concatenate([self.sum_fast, np.zeros(extra)])
            self.sum_slow = np.concatenate([self.sum_slow, np.zeros(extra)])
        valid = batch.valid & (batch.close > 0)
        # the value leaving the fast window is the one `fast` bars back, read before the push
        # (closes are positive or NaN: np.where does what np.nan_to_num does here, at a tenth of its cost)
        leaving_fast = self.closes.ago(self.fast - 1)
        leaving_fast = np.where(leaving_fast == leaving_fast, leaving_fast, 0.0)
        cols, leaving_slow = self.closes.push(batch.close, valid)
        leaving_slow = np.where(leaving_slow == leaving_slow, leaving_slow, 0.0)
        if cols is self.closes.all_columns:  # every symbol reported: whole-array ops, no gathers
            c = batch.close
            self.sum_fast += c - leaving_fast
            self.sum_slow += c - leaving_slow
        else:
            c = batch.close[cols]
            self.sum_fast[cols] += c - leaving_fast[cols]
            self.sum_slow[cols] += c - leaving_slow
        ready = self.closes.count >= self.slow
        # where= instead of np.errstate (a context manager costs more than the arithmetic here);
        # not-ready symbols (an empty slow sum) stay NaN
        score = np.divide(self.sum_fast / self.fast, self.sum_slow / self.slow, out=np.full(ready.shape, np.nan), where=ready)
        score -= 1.0
        confidence = np.where(ready, 1.0, 0.0)
        return Prediction(score, confidence, ready, {self.model_id: 1.0})


def make_model(cfg: ModelConfig, n_symbols: int) -> MomentumModel | SmaCrossModel:
    if cfg.kind == "sma_cross":
        return SmaCrossModel(cfg, n_symbols)
    return MomentumModel(cfg, n_symbols)
