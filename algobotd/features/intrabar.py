"""Intrabar order-flow measures: Cont-Kukanov-Stoikov OFI and tick-rule trade signing.

Both work on arrays ``[events, symbols]`` (vectorised across symbols) and are used by the
simulated feed to summarise its synthetic quote/trade paths into ``IntrabarFlow``; a live
feed can summarise its quotes and prints of one interval with the same functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from algobotd.domain import Quote, Trade


def ofi_from_quote_path(bid: np.ndarray, bid_size: np.ndarray, ask: np.ndarray, ask_size: np.ndarray) -> np.ndarray:
    """Sum over updates k >= 1 of the CKS order-flow increment, per symbol (axis 0 = updates):

    e_k = 1[b_k >= b_{k-1}] q^b_k - 1[b_k <= b_{k-1}] q^b_{k-1}
        - 1[a_k <= a_{k-1}] q^a_k + 1[a_k >= a_{k-1}] q^a_{k-1}
    """
    b0, b1, qb0, qb1 = bid[:-1], bid[1:], bid_size[:-1], bid_size[1:]
    a0, a1, qa0, qa1 = ask[:-1], ask[1:], ask_size[:-1], ask_size[1:]
    e = (np.where(b1 >= b0, qb1, 0.0) - np.where(b1 <= b0, qb0, 0.0)
         - np.where(a1 <= a0, qa1, 0.0) + np.where(a1 >= a0, qa0, 0.0))
    return e.sum(axis=0)


def tick_rule_volume(price: np.ndarray, size: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(buy volume, sell volume) per symbol by the tick rule (axis 0 = trades in time order;
    any trailing shape, ``reference`` has it without axis 0).

    A trade above the previous price is a buy, below a sell, equal keeps the previous sign;
    the first trade compares with ``reference`` (e.g. the previous close). Trades whose
    sign stays unknown are split evenly.
    """
    prev = np.concatenate([reference[None], price[:-1]], axis=0)
    sign = np.sign(price - prev)
    k = np.arange(sign.shape[0]).reshape(-1, *([1] * (sign.ndim - 1)))
    last = np.maximum.accumulate(np.where(sign != 0, k, -1), axis=0)  # latest non-zero tick
    carried = np.where(last >= 0, np.take_along_axis(sign, np.maximum(last, 0), axis=0), 0.0)
    buy = np.where(carried > 0, size, np.where(carried == 0, size / 2.0, 0.0)).sum(axis=0)
    sell = np.where(carried < 0, size, np.where(carried == 0, size / 2.0, 0.0)).sum(axis=0)
    return buy, sell


def ofi_from_quotes(quotes: Sequence[Quote]) -> float:
    """OFI of one symbol's quote updates in time order (0 with fewer than two)."""
    if len(quotes) < 2:
        return 0.0
    arr = np.array([(q.bid, q.bid_size, q.ask, q.ask_size) for q in quotes], dtype=float)
    return float(ofi_from_quote_path(arr[:, 0:1], arr[:, 1:2], arr[:, 2:3], arr[:, 3:4])[0])


def tick_rule_from_trades(trades: Sequence[Trade], reference: float) -> tuple[float, float]:
    """(buy, sell) volume of one symbol's prints in time order."""
    if not trades:
        return 0.0, 0.0
    arr = np.array([(t.price, t.size) for t in trades], dtype=float)
    buy, sell = tick_rule_volume(arr[:, 0:1], arr[:, 1:2], np.array([reference]))
    return float(buy[0]), float(sell[0])
