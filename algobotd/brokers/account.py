"""The engine's books from the venue account: opening balance, adopted positions, cash flows.

Without this the engine would size from ``broker.paper.initial_cash`` and its own fills,
whatever the account holds. The rules, all recorded so that a restart replays them:

* **Opening** (a store with no trades, orders or cash events meets a venue for the first
  time, :func:`adopt_account`): every position the account already holds becomes one opening
  fill at the venue's average cost (``exec_id = adopted:<account>:<symbol>:<ts>``, order row
  ``adopted-<symbol>`` with ``reason = "adopted"``), and one ``cash_events`` row of kind
  ``opening`` sets the cash base so that our cash equals the venue's. Marked at the venue's
  prices, ``cash + Σ qty × last`` is then the account's equity. The high-water mark and the
  day's start begin at that equity (a position bought at a loss before we knew it is no
  drawdown of ours). A restart replays the fills and the cash event once each (exec ids
  are keyed), and a store with history is never adopted again.
* **Cash flows** (:class:`CashWatch`): when the venue's cash differs from ours although every
  position agrees, no fill has been booked for ``quiet_seconds`` and the same difference is
  seen by two passes, it is cash that moved without a trade (deposit, withdrawal, fee,
  dividend, interest): it is recorded as a ``cash_events`` row (``deposit`` / ``withdrawal``),
  applied to the portfolio as a cash flow (no P&L: the high-water mark and the day's start
  move with it). The quiet period is there because venues report cash later than fills (IB's
  account values refresh every few minutes): a fill just booked must not look like a
  withdrawal. A commission or a round trip our books missed looks exactly like such a flow,
  so every booking is also a ``risk_events`` row (kind ``cash``) and an operator alert.
* **No opening yet** (a store with books but no cash event: written before cash events
  existed, or adopted while the venue reported no cash): the first pass with every position
  in agreement opens the books at the venue's cash (:func:`open_books`), rather than sizing
  from ``broker.paper.initial_cash`` until a quiet period that active trading never gives.
* **Restart** (:func:`apply_restored_cash`): the cash base is the last opening plus the flows
  after it (see ``RestoredState.cash_base``), in place of ``broker.paper.initial_cash``.

The paper broker never reaches any of this: it has no account but our store.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from algobotd.domain import Fill, OrderStatus, OrderType, Side, TimeInForce
from algobotd.ops.alerts import alert_row
from algobotd.store.restore import OPENING, RestoredState

if TYPE_CHECKING:
    from algobotd.brokers.reconcile import BrokerSnapshot, ReconcileReport
    from algobotd.engine import Engine

log = structlog.get_logger(__name__)

ADOPTED = "adopted"
CASH_TOLERANCE = 0.01  # USD: below this, venue and books agree (float rounding of many fills)


def raise_alert(engine: Engine, ts: int, level: str, message: str, **fields: object) -> None:
    """An operator alert (kind ``reconcile``) through the alerts outbox of the store."""
    engine.store.add("alerts", alert_row("reconcile", level, message, raised_ns=ts, **fields))


def record_cash_event(engine: Engine, ts: int, account: str, kind: str, amount: float, venue_cash: float | None,
                      note: str) -> None:
    """Cash the books took from the venue without a fill: stored, and told to the operator.

    A deposit is indistinguishable here from a fill or commission our books missed, so every
    such booking is a risk event and an alert (the opening one at ``info``), never only a log line."""
    engine.store.add("cash_events", (ts, account, kind, float(amount), venue_cash, note))
    engine.store.add("risk_events", (ts, "cash", kind, float(amount), None, engine.state.state.value, note))
    raise_alert(engine, ts, "info" if kind == OPENING else "warning", note, account=account, cash_kind=kind,
                amount=float(amount), venue_cash=venue_cash)
    engine.record_event(ts, "cash", note)


def apply_restored_cash(engine: Engine, restored: RestoredState) -> None:
    """Start-up, after the fills were replayed: stored cash events replace the configured cash."""
    if not restored.cash_events:
        return  # paper books, or a store from before cash events: broker.paper.initial_cash as always
    pf = engine.portfolio
    pf.apply_cash_flow(restored.cash_base(pf.initial_cash) - pf.initial_cash)
    pf.reset_hwm(restored.high_water_mark if restored.high_water_mark is not None else pf.equity)
    if restored.day_start is None:
        engine.day_start_equity = pf.equity


def adopt_account(engine: Engine, snap: BrokerSnapshot, report: ReconcileReport) -> bool:
    """Fresh store: the venue account's positions and cash become the engine's books (see above).

    Runs inside a reconciliation pass, after the venue's open orders were adopted and their fills
    booked, so only what those fills do not explain is adopted as a position. Returns whether the
    cash was opened too (False: the venue did not report it; the CashWatch opens it later).
    """
    pf = engine.portfolio
    account = snap.account or "account"
    ours = {p.symbol: p.qty for p in pf.positions()}
    for sym in sorted(snap.positions):
        delta = snap.positions[sym] - ours.get(sym, 0)
        if not delta:
            continue
        price = _adoption_price(engine, snap, sym)
        if price is None:
            log.warning("cannot adopt a position without a price", symbol=sym, qty=delta)
            continue  # stays a difference: REDUCING, as before this existed
        side = Side.BUY if delta > 0 else Side.SELL
        cid = f"{ADOPTED}-{sym}"
        engine.store.add("orders", (cid, 0, snap.ts, sym, side.value, abs(delta), OrderType.MARKET.value, None,
                                    TimeInForce.DAY.value, ADOPTED, OrderStatus.FILLED.value, abs(delta), price, "",
                                    f"position held by {account} before the daemon", snap.ts))
        engine.on_broker_event(Fill(f"{ADOPTED}:{account}:{sym}:{snap.ts}", cid, sym, side, abs(delta), price, 0.0,
                                    snap.ts))
        report.adopted_positions[sym] = delta
    return open_books(engine, snap, f"{len(report.adopted_positions)} position(s) adopted at the venue's average cost")


def open_books(engine: Engine, snap: BrokerSnapshot, why: str) -> bool:
    """The venue's cash becomes ours: an ``opening`` cash event (the cash before our fills), and
    the high-water mark and the day's start begin afresh at the equity marked at the venue's prices."""
    pf = engine.portfolio
    account = snap.account or "account"
    for sym, price in snap.prices.items():
        pf.mark_symbol(sym, price)  # value them at the venue's prices, not at their cost
    if snap.cash is None:
        log.warning("the venue did not report the account's cash: the books keep broker.paper.initial_cash "
                    "until it does", account=account, cash=round(pf.cash, 2))
        return False
    base = snap.cash - (pf.cash - pf.initial_cash)  # cash before the fills, so that ours == the venue's
    pf.apply_cash_flow(base - pf.initial_cash)
    record_cash_event(engine, snap.ts, account, OPENING, base, snap.cash,
                      f"opening from {account}: cash {snap.cash:,.2f}; {why}")
    pf.reset_hwm(pf.equity)
    engine.day_start_equity = pf.equity
    a = pf.account(snap.ts)
    engine.store.add("equity", (snap.ts, a.equity, a.cash, a.gross_exposure, a.net_exposure, a.realized_pnl,
                                a.unrealized_pnl, a.commissions, a.high_water_mark, a.drawdown))
    log.info("books opened from the venue account", account=account, cash=round(pf.cash, 2),
             equity=round(pf.equity, 2), venue_equity=snap.equity, why=why)
    return True


def _adoption_price(engine: Engine, snap: BrokerSnapshot, sym: str) -> float | None:
    for candidate in (snap.costs.get(sym), snap.prices.get(sym), _last(engine, sym)):
        if candidate is not None and math.isfinite(candidate) and candidate > 0:
            return float(candidate)
    return None


def _last(engine: Engine, sym: str) -> float | None:
    i = engine.symbols.get(sym)
    return None if i is None or i >= len(engine.portfolio.last) else float(engine.portfolio.last[i])


class CashWatch:
    """Cash that moved at the venue without a fill (see the module docstring): confirmed, then booked."""

    def __init__(self, quiet_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic,
                 needs_opening: bool = False) -> None:
        self.quiet_seconds = quiet_seconds
        # books without an opening balance (a store from before cash events, or an adoption the
        # venue told no cash): the first pass with every position in agreement opens them
        self.needs_opening = needs_opening
        self._clock = clock
        self._fills = -1
        self._quiet_since = 0.0
        self._pending: float | None = None  # the difference seen by the previous pass

    def observe(self, engine: Engine, snap: BrokerSnapshot, positions_agree: bool) -> float | None:
        """One reconciliation pass; returns the amount booked as a cash event, if any."""
        now = self._clock()
        if engine.fills != self._fills:  # a fill was booked: the venue's cash may lag it
            self._fills, self._quiet_since, self._pending = engine.fills, now, None
        if snap.cash is None or not positions_agree:
            self._pending = None
            return None
        if self.needs_opening:
            self.needs_opening = not open_books(engine, snap, "the books had no opening balance (a store from "
                                                              "before cash events): our fills replayed on the venue's cash")
            return None
        diff = snap.cash - engine.portfolio.cash
        if abs(diff) <= CASH_TOLERANCE:
            self._pending = None
            return None
        confirmed = self._pending is not None and abs(self._pending - diff) <= CASH_TOLERANCE
        if not confirmed or now - self._quiet_since < self.quiet_seconds:
            if not confirmed:
                log.warning("venue cash differs from the books", venue=round(snap.cash, 2),
                            ours=round(engine.portfolio.cash, 2), difference=round(diff, 2),
                            hint="booked as a deposit/withdrawal if it persists with no fill")
            self._pending = diff
            return None
        self._pending = None
        kind = "deposit" if diff > 0 else "withdrawal"
        engine.portfolio.apply_cash_flow(diff)
        engine.day_start_equity += diff  # no P&L: the day's loss must not see it
        record_cash_event(engine, snap.ts, snap.account, kind, diff, snap.cash,
                          f"{kind} of {abs(diff):,.2f} at {snap.account or 'the venue'} (venue cash "
                          f"{snap.cash:,.2f}): cash moved with every position in agreement and no fill booked; "
                          f"a commission or fill our books missed would look the same")
        log.warning("venue cash moved without a fill: booked", kind=kind, amount=round(diff, 2))
        return diff
