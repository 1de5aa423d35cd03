"""Multi-level stops, checked on every price update (per batch for all symbols, per tick for one).

Loss is measured from the average entry cost (``avg_cost``), signed for the side:
long ``(avg − price) / avg``, short ``(price − avg) / avg``.

- soft stop (``soft_stop_pct``, default 5%): sell ``soft_stop_reduce`` (50%) of the position,
  once per position (re-armed when the position goes flat or flips);
- hard stop (``hard_stop_pct``, 8%) or trailing stop (``trailing_stop_pct`` below the best
  price since entry, off by default): exit whatever is not already being exited;
- position breaker (``halt_position_loss_pct``, 15%): reported to the caller, which halts trading.

Orders are computed against ``held`` = position + open orders, so an exit already on its way is
never sent twice; if it is rejected or cancelled, the next price update re-issues it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from algobotd.config import RiskConfig
from algobotd.risk.codes import RiskError
from algobotd.risk.sizing import _grown


@dataclass(slots=True)
class StopOrders:
    """Orders the stops want (indices into the symbol arrays), and positions past the breaker."""

    index: np.ndarray  # int64
    signed_qty: np.ndarray  # int64
    kind: list[str]  # "stop:soft" | "stop:hard" | "stop:trailing"
    loss: np.ndarray  # loss fraction that triggered each order
    halt_index: np.ndarray
    halt_loss: np.ndarray
    # the worst loss over the positions looked at that have a price (0.0 when none): the
    # position-loss breaker's reading, so the engine need not compute it a second time
    worst_loss: float = 0.0


class StopBook:
    def __init__(self, n_symbols: int, cfg: RiskConfig) -> None:
        self.cfg = cfg
        self.soft_done = np.zeros(n_symbols, dtype=bool)
        self.side = np.zeros(n_symbols, dtype=np.int8)  # sign of the position the flags belong to
        self.best = np.full(n_symbols, np.nan)  # best price since entry (for the trailing stop)
        # below the lowest level nothing can fire: the common case returns before the masks
        self._first_level = min(cfg.soft_stop_pct, cfg.hard_stop_pct, cfg.halt_position_loss_pct)

    def grow(self, n: int) -> None:
        self.soft_done, self.side, self.best = _grown(self.soft_done, n, False), _grown(self.side, n), _grown(self.best, n, np.nan)

    def levels(self, qty: np.ndarray, avg_cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(soft, hard) stop prices per symbol; NaN where flat."""
        s = np.sign(qty)
        held = s != 0
        soft = np.where(held, avg_cost * (1 - s * self.cfg.soft_stop_pct), np.nan)
        hard = np.where(held, avg_cost * (1 - s * self.cfg.hard_stop_pct), np.nan)
        return soft, hard

    def check(self, qty: np.ndarray, held: np.ndarray, avg_cost: np.ndarray, price: np.ndarray,
              idx: np.ndarray | None = None) -> StopOrders:
        """Evaluate the stops at ``price`` for all symbols, or only those in ``idx``.

        Arrays are aligned with the symbol index (``price`` may be NaN: no check for that symbol).
        Only open positions (and those that just closed, to re-arm them) are looked at, so the
        cost follows the number of positions, not the universe.
        """
        if not (len(qty) == len(held) == len(avg_cost) == len(price)):
            raise RiskError("shape", f"stop arrays differ in length: qty {len(qty)}, held {len(held)}, "
                            f"avg_cost {len(avg_cost)}, price {len(price)}")
        if idx is None:
            n = len(qty)
            self.grow(n)
            idx = ((qty != 0) | (self.side[:n] != 0)).nonzero()[0]  # (np.flatnonzero: 5x the cost)
        elif idx.size:
            self.grow(int(idx.max()) + 1)
        if idx.size == 0:
            return _NONE
        q, avg, px = qty[idx], avg_cost[idx], price[idx]
        s = np.sign(q).astype(np.int8)
        # a new position (flat before, or flipped): re-arm the soft stop, restart the best price
        fresh = s != self.side[idx]
        if np.count_nonzero(fresh):  # (count_nonzero: a fraction of .any()'s cost)
            self.soft_done[idx[fresh]] = False
            self.best[idx[fresh]] = np.nan
            self.side[idx] = s
        live = (s != 0) & (px > 0) & (avg > 0)
        if not np.count_nonzero(live):
            return _NONE
        cfg = self.cfg
        trailing_on = cfg.trailing_stop_pct > 0
        if trailing_on:  # the best price only matters to the trailing stop
            best = self.best[idx]
            best = np.where(live & ~(s * best >= s * px), px, best)  # long: max, short: min (NaN -> px)
            self.best[idx] = best
        safe_avg = np.where(live, avg, 1.0)
        loss = np.where(live, s * (safe_avg - px) / safe_avg, 0.0)
        worst = float(loss[live].max())
        if worst < self._first_level and not trailing_on:
            return StopOrders(_EMPTY_I, _EMPTY_I, [], _EMPTY_F, _EMPTY_I, _EMPTY_F, worst)  # nothing near a stop
        hard = live & (loss >= cfg.hard_stop_pct)
        trailing = np.zeros_like(hard)
        if trailing_on:
            safe_best = np.where(live & (best > 0), best, 1.0)
            trail = np.where(live & (best > 0), s * (safe_best - px) / safe_best, 0.0)
            trailing = live & ~hard & (trail >= cfg.trailing_stop_pct)
        soft = live & ~hard & ~trailing & (loss >= cfg.soft_stop_pct)
        halt = live & (loss >= cfg.halt_position_loss_pct)
        if not np.count_nonzero(hard | trailing | soft | halt):
            return StopOrders(_EMPTY_I, _EMPTY_I, [], _EMPTY_F, _EMPTY_I, _EMPTY_F, worst)
        # what is still ours to sell: held on the same side as the position
        h = held[idx]
        exitable = np.where(np.sign(h) == s, np.abs(h), 0)
        exit_ = (hard | trailing) & (exitable > 0)
        soft &= ~self.soft_done[idx]
        self.soft_done[idx[soft]] = True  # once per position, whether or not anything is left to sell
        cut = np.minimum(np.maximum(1, np.floor(np.abs(q) * cfg.soft_stop_reduce).astype(np.int64)), exitable)
        soft_send = soft & (cut > 0)
        pick = (exit_ | soft_send).nonzero()[0]
        qty_out = np.where(exit_, -s * exitable, -s * cut)[pick].astype(np.int64)
        kinds = ["stop:hard" if hard[k] else "stop:trailing" if trailing[k] else "stop:soft" for k in pick.tolist()]
        return StopOrders(idx[pick].astype(np.int64), qty_out, kinds, loss[pick], idx[halt].astype(np.int64), loss[halt],
                          worst)

    def rearm_soft(self, i: int) -> None:
        """The soft-stop order was denied before reaching the broker: let the next update retry."""
        self.soft_done[i] = False


_EMPTY_I = np.empty(0, dtype=np.int64)
_EMPTY_F = np.empty(0)
_NONE = StopOrders(_EMPTY_I, _EMPTY_I, [], _EMPTY_F, _EMPTY_I, _EMPTY_F)
