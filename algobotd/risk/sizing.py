"""Fractional-Kelly position sizing, vectorised across symbols.

Per symbol, the Kelly inputs come from its own round trips (``TradeStats``, rebuilt from the
``trades`` table at start-up) shrunk toward a prior with the weight of ``prior_trades`` round
trips, so a symbol with no history is sized by the prior and a long losing record drives its
Kelly fraction to zero:

    p  = (wins + k·p0) / (n + k)
    W  = (sum of winning returns + k·p0·w0) / (wins + k·p0)          average win
    L  = (sum of losing |returns| + k·(1−p0)·l0) / (losses + k·(1−p0)) average loss
    f* = clip(p − (1 − p) / (W / L), 0, 1)                            full Kelly

The target weight (share of equity in the position) is
``kelly_fraction · f* · confidence · clip(market vol / symbol vol, vol_ratio_min, vol_ratio_max)``,
capped at ``max_position_pct``; f* is used as a share of equity, which is the conservative
reading (the bet-size reading f*/L would put almost every symbol at the cap). New exposure is
then scaled down, uniformly, to fit the portfolio risk budget (sum of |value| × annual
volatility, i.e. assuming perfectly correlated positions) and the gross exposure cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from algobotd.config import RiskConfig
from algobotd.domain import Fill
from algobotd.risk.codes import RiskError

TRADING_SECONDS_PER_YEAR = 252 * 23_400  # regular sessions only


def _grown(a: np.ndarray, n: int, fill: float | int = 0) -> np.ndarray:
    if n <= len(a):
        return a
    return np.concatenate([a, np.full(n - len(a), fill, dtype=a.dtype)])


class TradeStats:
    """Round trips per symbol (flat -> open -> flat, or through a flip), net of commissions.

    A round trip's return is its P&L over the notional paid to open it (scaling-in included).
    """

    def __init__(self, n_symbols: int) -> None:
        self.wins = np.zeros(n_symbols)
        self.losses = np.zeros(n_symbols)
        self.win_sum = np.zeros(n_symbols)
        self.loss_sum = np.zeros(n_symbols)  # magnitudes
        self._qty = np.zeros(n_symbols, dtype=np.int64)
        self._avg = np.zeros(n_symbols)
        self._pnl = np.zeros(n_symbols)
        self._notional = np.zeros(n_symbols)
        # Kelly inputs per symbol change only when a round trip closes: cached for the whole
        # universe (p, average win, average loss, f*), refreshed for the symbols listed in _stale
        self._kelly: np.ndarray | None = None  # [4, n]: one gather per batch for all four
        self._kelly_cfg: RiskConfig | None = None
        self._stale: set[int] = set()

    def grow(self, n: int) -> None:
        if n <= len(self.wins):  # per fill: skip the attribute walk when nothing grows
            return
        for name in ("wins", "losses", "win_sum", "loss_sum", "_qty", "_avg", "_pnl", "_notional"):
            setattr(self, name, _grown(getattr(self, name), n))

    def kelly_inputs(self, cfg: RiskConfig, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(win rate, average win, average loss, full Kelly) of the symbols in ``idx``, from a cache
        refreshed with :func:`kelly_of` (update the stats only via ``on_fill``)."""
        n = len(self.wins)
        if self._kelly is None or self._kelly_cfg is not cfg or self._kelly.shape[1] != n:
            self._kelly, self._kelly_cfg = np.array([kelly_of(self, i, cfg) for i in range(n)]).reshape(n, 4).T.copy(), cfg
            self._stale.clear()
        elif self._stale:  # the symbols whose round trip closed since: a few per bar, scalar code
            for i in self._stale:
                self._kelly[:, i] = kelly_of(self, i, cfg)
            self._stale.clear()
        p, avg_win, avg_loss, kelly = self._kelly[:, idx]
        return p, avg_win, avg_loss, kelly

    def on_fill(self, i: int, fill: Fill) -> None:
        """Book one execution of symbol ``i`` (a few per bar at most: plain Python)."""
        self.grow(i + 1)
        d, price = fill.signed_qty, float(fill.price)
        q0 = int(self._qty[i])
        self._pnl[i] -= fill.commission
        if q0 == 0 or (q0 > 0) == (d > 0):
            self._avg[i] = (q0 * self._avg[i] + d * price) / (q0 + d)
            self._notional[i] += abs(d) * price
            self._qty[i] = q0 + d
            return
        closed = min(abs(d), abs(q0))
        self._pnl[i] += closed * (price - self._avg[i]) * (1 if q0 > 0 else -1)
        q1 = q0 + d
        self._qty[i] = q1
        if q1 != 0 and (q1 > 0) == (q0 > 0):
            return  # partly reduced: the round trip goes on
        self._close_round_trip(i)
        if q1 != 0:  # flipped: the remainder opens a new round trip at this price
            self._avg[i] = price
            self._notional[i] = abs(q1) * price

    def _close_round_trip(self, i: int) -> None:
        self._stale.add(i)
        ret = self._pnl[i] / self._notional[i] if self._notional[i] > 0 else 0.0
        if ret > 0:
            self.wins[i] += 1
            self.win_sum[i] += ret
        else:
            self.losses[i] += 1
            self.loss_sum[i] -= ret
        self._pnl[i] = 0.0
        self._notional[i] = 0.0
        self._avg[i] = 0.0


def kelly_of(stats: TradeStats, i: int, cfg: RiskConfig) -> tuple[float, float, float, float]:
    """(win rate, average win, average loss, full Kelly) of symbol ``i``, shrunk toward the prior.

    Plain float arithmetic (IEEE, as numpy's): the cache refreshes one or two symbols per bar,
    where a numpy call costs more than the whole formula."""
    k, p0 = cfg.prior_trades, cfg.prior_win_rate
    wins, losses = float(stats.wins[i]), float(stats.losses[i])
    # denominators are 0 only with no prior weight and no history: fall back to the prior there
    n_all, n_win, n_loss = wins + losses + k, wins + k * p0, losses + k * (1 - p0)
    p = (wins + k * p0) / n_all if n_all > 0 else p0
    avg_win = (float(stats.win_sum[i]) + k * p0 * cfg.prior_avg_win) / n_win if n_win > 0 else cfg.prior_avg_win
    avg_loss = ((float(stats.loss_sum[i]) + k * (1 - p0) * cfg.prior_avg_loss) / n_loss if n_loss > 0
                else cfg.prior_avg_loss)
    return p, avg_win, avg_loss, _full_kelly(p, avg_win, avg_loss)


def _full_kelly(p: float, avg_win: float, avg_loss: float) -> float:
    """f* = p − (1 − p)/b with payoff b = W/L, clipped to [0, 1]; no win ever -> 0, no loss ever -> p."""
    if avg_loss > 0:
        f = p - (1 - p) * avg_loss / avg_win if avg_win > 0 else 0.0
    else:
        f = p if avg_win > 0 else 0.0
    return min(f, 1.0) if f > 0 else 0.0  # NaN -> 0 too


def shrunk_inputs(stats: TradeStats, n: int, cfg: RiskConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(win rate, average win, average loss) of the first ``n`` symbols (:func:`kelly_of`)."""
    rows = np.array([kelly_of(stats, i, cfg)[:3] for i in range(n)]).reshape(n, 3)
    return rows[:, 0], rows[:, 1], rows[:, 2]


def full_kelly(p: np.ndarray, avg_win: np.ndarray, avg_loss: np.ndarray) -> np.ndarray:
    """:func:`_full_kelly` element by element."""
    return np.array([_full_kelly(*x) for x in zip(np.ravel(p).tolist(), np.ravel(avg_win).tolist(),
                                                   np.ravel(avg_loss).tolist())]).reshape(np.shape(p))


class VolEstimator:
    """EWMA volatility of per-bar log returns, per symbol and of each book's market.

    The market is the reference index when the feed has one (else the equal-weight mean of the
    book's symbols' returns). A live engine has one book; a Monte Carlo engine running ``books``
    paths in lockstep has one market per path (each path's symbols a contiguous, equal block).
    """

    def __init__(self, n_symbols: int, halflife_bars: float, min_bars: int, books: int = 1) -> None:
        self.decay = 0.5 ** (1.0 / halflife_bars)
        self.min_bars = min_bars
        self.books = books
        self.var = np.zeros(n_symbols)
        self.count = np.zeros(n_symbols, dtype=np.int64)
        self.prev = np.full(n_symbols, np.nan)
        # per book, plain floats: the market update is scalar arithmetic (math.log), the same
        # numbers whether a path runs alone or in lockstep with others
        self.market_vars = [0.0] * books
        self.market_counts = [0] * books
        self.market_prevs = [math.nan] * books

    def update(self, close: np.ndarray, valid: np.ndarray, market_price: float | list[float] | None = None) -> None:
        """One bar of closes; ``market_price``: the reference index (one price per book when there
        are several; a missing or non-positive one falls back to the book's equal-weight mean)."""
        n = len(close)
        if n > len(self.var):
            self.var, self.count, self.prev = _grown(self.var, n), _grown(self.count, n), _grown(self.prev, n, np.nan)
        ok = valid & (close > 0)
        prev = self.prev[:n]
        has = ok & (prev > 0)
        lam = self.decay
        var = self.var[:n]
        if np.count_nonzero(has) == n:  # every symbol has a return (the usual bar): no masks
            r = np.log(close / prev)
            var[...] = lam * var + (1 - lam) * r * r
            self.count[:n] += 1
            prev[...] = close
        else:
            r = np.zeros(n)
            np.divide(close, prev, out=r, where=has)
            np.log(r, out=r, where=has)  # r stays 0 where there is no return
            # full-array ufuncs with where=: cheaper than boolean fancy indexing at these sizes
            np.copyto(var, lam * var + (1 - lam) * r * r, where=has)
            self.count[:n] += has
            np.copyto(prev, close, where=ok)
        prices = (market_price,) if self.books == 1 else market_price or (None,) * self.books
        size = n // self.books
        mvar, mcount, mprev = self.market_vars, self.market_counts, self.market_prevs
        for b, price in enumerate(prices):  # type: ignore[arg-type]
            if price is not None and price > 0:
                prev = mprev[b]
                mprev[b] = float(price)
                if not prev > 0:
                    continue
                m = math.log(price / prev)
            else:  # no usable reference: the equal-weight mean of the book's returns
                k = int(np.count_nonzero(has[b * size : (b + 1) * size]))
                if not k:
                    continue
                m = float(r[b * size : (b + 1) * size].sum()) / k
            mvar[b] = lam * mvar[b] + (1 - lam) * m * m
            mcount[b] += 1

    def sigma(self, n: int) -> np.ndarray:
        """Per-bar volatility, NaN until ``min_bars`` returns were seen."""
        return np.where(self.count[:n] >= self.min_bars, np.sqrt(self.var[:n]), np.nan)

    def market_sigma_of(self, book: int) -> float:
        return math.sqrt(self.market_vars[book]) if self.market_counts[book] >= self.min_bars else math.nan

    @property
    def market_sigma(self) -> float:
        return self.market_sigma_of(0)

    def market_sigmas(self) -> np.ndarray:
        """Per-bar market volatility of every book (NaN until ``min_bars`` returns)."""
        return np.array([self.market_sigma_of(b) for b in range(self.books)])


@dataclass(slots=True)
class SizingResult:
    """Targets plus every input that produced them (stored with the orders: explainable)."""

    target: np.ndarray
    win_rate: np.ndarray
    payoff: np.ndarray
    kelly_full: np.ndarray
    vol_ratio: np.ndarray
    weight: np.ndarray  # share of equity wanted, after the per-position cap
    sigma_annual: np.ndarray
    # uniform scaling of new exposure by the risk budget / gross cap (1 = not binding); with
    # several books, one factor per book
    scale: float | np.ndarray


def size_targets(
    score: np.ndarray, confidence: np.ndarray, ready: np.ndarray, entry: float, exit: float,
    held: np.ndarray, price: np.ndarray, equity: float | np.ndarray, stats: TradeStats, vol: VolEstimator,
    bar_seconds: int, cfg: RiskConfig, reduce_only: bool | np.ndarray = False, book_size: int = 0,
) -> SizingResult:
    """Whole-share targets: enter at ``score > entry``, leave at ``score < exit``, else hold.

    ``held`` is position + open orders. Holding keeps the quantity instead of re-targeting every
    bar (which would trade a few shares on every move). ``reduce_only`` (REDUCING) never
    proposes growth.

    ``book_size`` > 0: the symbols are books of that many symbols each (Monte Carlo paths in
    lockstep, algobotd/engine.py); ``equity`` and ``reduce_only`` then hold one value per book,
    and each book is sized exactly as if it were sized alone.
    """
    n = len(held)
    if not (len(score) == len(confidence) == len(ready) == len(price) == n):
        raise RiskError("shape", f"sizing arrays differ in length: score {len(score)}, confidence {len(confidence)}, "
                        f"ready {len(ready)}, price {len(price)}, held {n}")
    if len(vol.var) < n:
        raise RiskError("shape", f"volatility estimates cover {len(vol.var)} symbols, sizing asks for {n}")
    sigma = vol.sigma(n)
    target = held.copy()
    # Signals first, on the whole universe (a NaN score compares False everywhere); the
    # usability tests (ready, price, volatility) then run only on the few symbols that signal.
    long_ = held > 0
    signal = ((score > entry) & ~long_) | ((score < exit) & long_)
    if cfg.allow_short:
        signal |= ((score < -entry) & (held >= 0)) | ((score > -exit) & (held < 0))
    else:
        short = held < 0
        if np.count_nonzero(short):
            target[short] = 0
    c = signal.nonzero()[0]
    e = c  # entries (indices), from the usable signalling symbols
    if c.size:
        c = c[ready[c] & (price[c] > 0) & (sigma[c] > 0)]
        sc, hc = score[c], held[c]
        target[c[(sc < exit) & (hc > 0)]] = 0
        go_long_c = (sc > entry) & (hc <= 0)
        entering_c = go_long_c
        if cfg.allow_short:
            target[c[(sc > -exit) & (hc < 0)]] = 0
            entering_c = go_long_c | ((sc < -entry) & (hc >= 0))
        e = c[entering_c]
    # Kelly, volatility and caps only for the few symbols entering (the hot path stays O(entries))
    explain = np.full((5, n), np.nan)  # win rate, payoff, kelly, vol ratio, weight (filled for entries)
    if e.size:
        p, avg_win, avg_loss, kelly = stats.kelly_inputs(cfg, e)
        if book_size:
            book = e // book_size
            market_sigmas = vol.market_sigmas()
            market_sigma: float | np.ndarray = market_sigmas[book]
            eq = np.asarray(equity)[book]
            positive = eq > 0
            # the per-order notional cap binds the sizing too, so an entry is never sized to be denied
            cap: float | np.ndarray = np.where(
                positive, np.minimum(cfg.max_position_pct, cfg.max_order_value / np.where(positive, eq, 1.0)), 0.0)
            funds: float | np.ndarray = np.maximum(eq, 0.0)
        else:
            market_sigma = vol.market_sigma
            cap = min(cfg.max_position_pct, cfg.max_order_value / equity) if equity > 0 else 0.0  # type: ignore[operator]
            funds = max(equity, 0.0)  # type: ignore[type-var]
        # np.clip / nan_to_num cost ~10 us each on small arrays: plain ufuncs instead
        vol_ratio = np.minimum(np.maximum(market_sigma / sigma[e], cfg.vol_ratio_min), cfg.vol_ratio_max)
        raw_conf = confidence[e]
        conf = np.where(raw_conf > 0, np.minimum(raw_conf, 1.0), 0.0)
        weight = np.minimum(cfg.kelly_fraction * kelly * conf * np.where(vol_ratio > 0, vol_ratio, 0.0), cap)
        size = np.floor(weight * funds / price[e]).astype(np.int64)
        target[e] = np.where(go_long_c[entering_c], size, -size) if cfg.allow_short else size  # long only: all buys
        explain[:, e] = (p, avg_win / avg_loss, kelly, vol_ratio, weight)

    factor = math.sqrt(TRADING_SECONDS_PER_YEAR / bar_seconds)
    sigma_annual = sigma * factor
    if book_size:
        scale: float | np.ndarray = np.where(reduce_only, 0.0, 1.0)  # books without entries: nothing to scale
        if e.size:
            _fit_book_budgets(target, held, e, price, sigma_annual, market_sigmas * factor, np.asarray(equity), cfg,
                              np.asarray(reduce_only), book_size, scale)
    elif e.size:
        target, scale = _fit_budgets(target, held, e, price, sigma_annual, vol.market_sigma * factor, equity, cfg,  # type: ignore[arg-type]
                                     bool(reduce_only))
    else:  # only holds and exits: no target grows |held|, so the budgets have nothing to scale
        scale = 0.0 if reduce_only else 1.0
    return SizingResult(target, *explain, sigma_annual, scale)


def _fit_book_budgets(target: np.ndarray, held: np.ndarray, entries: np.ndarray, price: np.ndarray,
                      sigma_annual: np.ndarray, market_sigma_annual: np.ndarray, equity: np.ndarray, cfg: RiskConfig,
                      reduce_only: np.ndarray, book_size: int, scale: np.ndarray) -> None:
    """:func:`_fit_budgets` for each book with entries, on that book's slices: ``target`` and the
    per-book ``scale`` are updated in place."""
    books = entries // book_size
    for b in np.unique(books).tolist():
        lo, hi = b * book_size, (b + 1) * book_size
        fitted, scale[b] = _fit_budgets(target[lo:hi], held[lo:hi], entries[books == b] - lo, price[lo:hi],
                                        sigma_annual[lo:hi], float(market_sigma_annual[b]), float(equity[b]), cfg,
                                        bool(reduce_only[b]))
        target[lo:hi] = fitted


def _fit_budgets(target: np.ndarray, held: np.ndarray, entries: np.ndarray, price: np.ndarray, sigma_annual: np.ndarray,
                 market_sigma_annual: float, equity: float, cfg: RiskConfig, reduce_only: bool) -> tuple[np.ndarray, float]:
    """Scale the growth part of every target by one factor so that the risk budget and gross cap hold.

    Only ``entries`` can grow |held|: every other target is ``held`` or 0 (hold or exit), which
    is all base. ``target`` is changed in place when the result differs from it.
    """
    # base: the part of each target that does not grow |held| (0 when the target flips the side)
    te, he = target[entries], held[entries]
    same_side = (te > 0) == (he > 0)
    base_e = np.where(same_side & (he != 0) & (te != 0), np.where(np.abs(te) < np.abs(he), te, he), 0)
    if reduce_only:
        target[entries] = base_e
        return target, 0.0
    growth_e = te - base_e
    grows = growth_e != 0
    if not np.count_nonzero(grows):
        return target, 1.0
    g, growth_g = entries[grows], growth_e[grows]
    base = target.copy()
    base[entries] = base_e
    px = np.where(price > 0, price, 0.0)
    fallback = market_sigma_annual if market_sigma_annual == market_sigma_annual else 0.0
    sig = np.where(sigma_annual == sigma_annual, sigma_annual, fallback)
    abs_base = np.abs(base)
    abs_growth = np.abs(growth_g)
    scale = 1.0
    for cap, used, wanted in (
        (cfg.risk_budget_pct * equity, float(abs_base @ (px * sig)), float(abs_growth @ (px[g] * sig[g]))),
        (cfg.max_gross_pct * equity, float(abs_base @ px), float(abs_growth @ px[g])),
    ):
        if wanted > 0:
            scale = min(scale, max(0.0, (cap - used) / wanted))
    if scale >= 1.0:
        return target, 1.0
    scaled = base.astype(np.int64)
    scaled[g] += np.trunc(growth_g * scale).astype(np.int64)
    return scaled, scale
