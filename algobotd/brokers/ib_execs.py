"""IB execution corrections: book a corrected execution as a replacement, exactly once.

IB corrects an execution by sending it again with the same exec id up to the last segment
and a higher last segment (``0000e0d5.6542f7c1.01.01`` -> ``0000e0d5.6542f7c1.01.02``), with
the corrected quantity, price and commission. ib_async treats it as one more fill; booked
as such, the shares would count twice.

:class:`ExecutionBook` remembers the latest version booked of every execution (seeded from
the stored trades at start-up) and turns each fill IB reports, live, after a reconnect or in
a reconciliation snapshot, into what the books need:

* a first version: the fill itself;
* the version already booked, or an older one (``reqExecutions`` returns the original and its
  correction): the booked fill again (the portfolio drops a known exec id) or nothing;
* a higher version: a **reversal** of the booked version (exec id ``<old id>:reversed``,
  opposite side, same quantity and price, no commission) and the corrected fill (its own exec
  id; commission = corrected − already booked). Both are deterministic, so whichever path sees
  the correction first books it and the others are dropped as duplicates. Cash, position and
  equity end exactly where the corrected execution alone would put them (when the position
  also holds other lots at another cost, the split between realized and unrealized P&L can
  shift: average-cost books cannot un-blend one fill; and the Kelly statistics see the
  reversal as a round trip).

Both carry ``<client order id>:correction`` as client order id, so the engine's open-order
counts (which the venue's order status already reports as corrected) are not moved twice. A
corrected commission lower than the one booked is not refunded here (fills carry no negative
commission); the venue's cash then exceeds ours and the account's CashWatch books the
difference (``algobotd/brokers/account.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import structlog

from algobotd.brokers.reconcile import CORRECTION
from algobotd.domain import Fill, Side

log = structlog.get_logger(__name__)

REVERSED = ":reversed"


def exec_version(exec_id: str) -> tuple[str, int]:
    """``'0000e0d5.6542f7c1.01.02'`` -> ``('0000e0d5.6542f7c1.01', 2)``; ids of another shape are version 0."""
    base, dot, last = exec_id.rpartition(".")
    if not dot or not base:
        return exec_id, 0
    try:
        return base, int(last, 16)
    except ValueError:
        return exec_id, 0


class ExecutionBook:
    def __init__(self) -> None:
        self._booked: dict[str, tuple[int, Fill]] = {}  # execution -> (latest version booked, its fill)
        self._commission: dict[str, float] = {}  # execution -> commission booked for it, all versions

    def restore(self, fills: Iterable[Fill]) -> None:
        """The stored trades (start-up): what has been booked already."""
        for f in fills:
            if f.exec_id.endswith(REVERSED):
                continue
            base, version = exec_version(f.exec_id)
            self._commission[base] = self._commission.get(base, 0.0) + f.commission
            if version >= self._booked.get(base, (-1, f))[0]:
                self._booked[base] = (version, f)

    def booked(self, exec_id: str) -> bool:
        """Whether this execution report (or a later version of it) has been booked already."""
        base, version = exec_version(exec_id)
        return version <= self._booked.get(base, (-1, None))[0]

    def book(self, fill: Fill) -> tuple[list[Fill], int]:
        """The fills to book for one IB execution report, and the change of the order's filled shares."""
        base, version = exec_version(fill.exec_id)
        prev = self._booked.get(base)
        if prev is None:
            self._booked[base] = (version, fill)
            self._commission[base] = fill.commission
            return [fill], fill.qty
        booked_version, old = prev
        if version < booked_version:
            return [], 0  # the original of a correction we booked already
        if version == booked_version:
            return [fill], 0  # a replay (reconnect, snapshot): the portfolio drops the known exec id
        self._booked[base] = (version, fill)
        cid = old.client_order_id.removesuffix(CORRECTION) + CORRECTION
        reversal = Fill(old.exec_id + REVERSED, cid, old.symbol, Side.SELL if old.side is Side.BUY else Side.BUY,
                        old.qty, old.price, 0.0, fill.ts)
        extra = fill.commission - self._commission.get(base, 0.0)
        self._commission[base] = self._commission.get(base, 0.0) + max(0.0, extra)
        if extra < 0:
            log.warning("ib correction lowers the commission: the refund shows as venue cash",
                        exec_id=fill.exec_id, refund=round(-extra, 4))
        corrected = replace(fill, client_order_id=cid, commission=max(0.0, extra))
        log.warning("ib execution corrected: reversed and rebooked", old=old.exec_id, new=fill.exec_id,
                    qty=(old.qty, fill.qty), price=(old.price, fill.price))
        return [reversal, corrected], fill.qty - old.qty
