"""Reconciliation: make the engine's books agree with the venue before any new order.

Shared by every real broker adapter (Alpaca, IB). An adapter provides two things:

* ``async snapshot(since_ns) -> BrokerSnapshot``: what the venue knows now — its orders
  (open ones, and closed ones touched since ``since_ns``), its executions since ``since_ns``,
  its positions and cash;
* ``set_connection_listener(cb)``: ``cb(True)`` after every (re)connect, ``cb(False)`` on
  every loss of connection (may fire more than once per event: handling is idempotent);

optionally ``follow(cid)`` (forward events of an adopted foreign order from now on) and
``set_external_listener(cb)`` (``cb(reason)`` when the venue reports activity on an order
that is not ours: the Reconciler then runs a pass, which adopts it or records the position
change); plus an ``accepting_orders`` flag its ``submit`` honours: while False, orders are not sent
to the venue but answered locally with an ``OrderUpdate(REJECTED, reason=...)`` (the order
row already exists, write-ahead, so it must be closed, never silently dropped).

Exec ids are the contract that makes fills exactly-once: an adapter must give the *same*
``Fill.exec_id`` for one execution whether it arrives on its live stream or in a snapshot.

:func:`reconcile` then, with the engine's state (the store's RestoredState is already in
the engine: open orders, booked fills):

1. adopts open venue orders the engine does not know (``reason = "external"``, written to
   the ``orders`` table and followed like ours from then on, ``broker.follow(cid)``; an id
   of our own format that the store lost is adopted as ``"recovered"`` and the id sequence
   moves past it so it is never reused);
2. books every venue fill of one of *our* (or adopted) orders that the portfolio has not
   seen, through ``engine.on_broker_event`` (so portfolio, ``trades`` and ``positions`` all
   see it once); fills of foreign orders are not booked: they show up in step 4;
3. resolves engine orders the venue does not list as open: the venue's final status if it
   knows the order, FILLED if its fills cover it, else CANCELED ("unknown at broker") — a
   write-ahead row whose submit never reached the venue is closed, never resubmitted;
4. compares positions: every difference is a ``risk_events`` row (kind ``reconcile``);
   beyond ``broker.position_tolerance`` shares the state goes to ``broker.on_mismatch``
   (REDUCING or HALTED) and an alert is raised. Before declaring a difference a second
   snapshot is taken, because a fill in flight between the venue's position and fill
   queries looks exactly like an external trade.

At start-up against a store without books, the pass first adopts the account (its positions
as opening fills, its cash as the opening balance), and every pass books cash that moved at
the venue without a fill once it is confirmed (both in :mod:`algobotd.brokers.account`).

:class:`Reconciler` runs it at start and after every reconnect, and holds the broker's
order gate closed in between; while disconnected it escalates to REDUCING with actor
``breaker:broker_disconnected`` (latched, as every breaker: an operator ``resume`` lifts it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import structlog

from algobotd.brokers.account import CashWatch, adopt_account, raise_alert
from algobotd.brokers.base import Broker
from algobotd.store.restore import has_books, has_cash_events
from algobotd.domain import (
    NS_PER_SECOND,
    Fill,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    TradingState,
)

if TYPE_CHECKING:
    from algobotd.config import Config
    from algobotd.engine import Engine

log = structlog.get_logger(__name__)

EXTERNAL = "external"
RECOVERED = "recovered"
CORRECTION = ":correction"  # client order id suffix of fills that correct an execution (ib_execs.py)
DISCONNECT_ACTOR = "breaker:broker_disconnected"
RECONCILE_ACTOR = "breaker:reconcile"


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """One order as the venue sees it. ``client_order_id`` is ours, or the venue's own id
    for an order placed elsewhere (it is never empty)."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    side: Side
    qty: int
    filled_qty: int
    status: OrderStatus
    avg_fill_price: float = 0.0
    type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    tif: TimeInForce = TimeInForce.DAY
    ts: int = 0  # created at the venue, ns UTC


@dataclass(frozen=True, slots=True)
class BrokerSnapshot:
    ts: int  # when the snapshot was taken, ns UTC
    orders: list[BrokerOrder] = field(default_factory=list)  # open + recently closed
    fills: list[Fill] = field(default_factory=list)  # since the requested time, any order
    positions: dict[str, int] = field(default_factory=dict)  # symbol -> signed shares, non-zero only
    cash: float | None = None  # None: the venue did not say
    equity: float | None = None
    buying_power: float | None = None
    account: str = ""
    costs: dict[str, float] = field(default_factory=dict)  # symbol -> the venue's average cost per share
    prices: dict[str, float] = field(default_factory=dict)  # symbol -> the venue's current price

    @property
    def open_orders(self) -> list[BrokerOrder]:
        return [o for o in self.orders if o.status.is_open]


class ReconcilableBroker(Broker, Protocol):
    accepting_orders: bool

    async def snapshot(self, since_ns: int) -> BrokerSnapshot: ...

    def set_connection_listener(self, listener: Callable[[bool], None]) -> None: ...


@dataclass(slots=True)
class ReconcileReport:
    ts: int
    fills_inserted: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    resolved: dict[str, OrderStatus] = field(default_factory=dict)
    position_diffs: dict[str, tuple[int, int]] = field(default_factory=dict)  # symbol -> (ours, venue)
    escalated_to: TradingState | None = None
    broker_equity: float | None = None
    broker_cash: float | None = None
    adopted_positions: dict[str, int] = field(default_factory=dict)  # symbol -> shares adopted (fresh store)
    cash_booked: float | None = None  # a deposit (+) / withdrawal (-) found by this pass

    def summary(self) -> str:
        return (f"fills_inserted={len(self.fills_inserted)} adopted={len(self.adopted)} "
                f"resolved={len(self.resolved)} position_diffs={len(self.position_diffs)}"
                + (f" adopted_positions={len(self.adopted_positions)}" if self.adopted_positions else "")
                + (f" cash_booked={self.cash_booked:.2f}" if self.cash_booked is not None else ""))


def is_our_id(client_order_id: str) -> bool:
    """Our ids are ``ab-<seq>-<symbol>`` (see engine._new_order)."""
    parts = client_order_id.split("-", 2)
    return len(parts) == 3 and parts[0] == "ab" and parts[1].isdigit()


def fills_since(engine: Engine, lookback_hours: float) -> int:
    """From when the venue's fills matter: the oldest open order, at most the lookback back."""
    now = engine.clock.now()
    since = now - int(lookback_hours * 3600 * NS_PER_SECOND)
    created = [o.request.created_ts for o in engine.open_orders.values() if o.request.created_ts > 0]
    return min([since, *created])


def _book_fills(engine: Engine, snap: BrokerSnapshot, report: ReconcileReport) -> None:
    ours = set(engine.open_orders)
    for fill in sorted(snap.fills, key=lambda f: (f.ts, f.exec_id)):
        owner = fill.client_order_id.removesuffix(CORRECTION)
        if owner not in ours and not is_our_id(owner):
            continue  # someone else's trade: it shows up as a position difference instead
        before = engine.fills
        engine.on_broker_event(fill)  # the portfolio drops exec ids it already booked
        if engine.fills > before:
            report.fills_inserted.append(fill.exec_id)


def _adopt(engine: Engine, bo: BrokerOrder, booked_later: int, report: ReconcileReport) -> None:
    tag = RECOVERED if is_our_id(bo.client_order_id) else EXTERNAL
    seq = int(bo.client_order_id.split("-")[1]) if tag == RECOVERED else 0
    if seq > engine.order_seq:
        engine.order_seq = seq  # never hand out an id the venue already holds
    ts = bo.ts or engine.clock.now()
    req = OrderRequest(bo.client_order_id, bo.symbol, bo.side, bo.qty, bo.type, bo.limit_price, bo.tif, tag, ts)
    engine.store.add("orders", (req.client_order_id, seq, ts, req.symbol, req.side.value, req.qty, req.type.value,
                                req.limit_price, req.tif.value, tag, bo.status.value, bo.filled_qty,
                                bo.avg_fill_price, bo.broker_order_id, "", ts))
    # the snapshot fills of this order are booked right after, through the path that counts them
    engine.track_order(req, max(0, bo.filled_qty - booked_later), bo.status)
    report.adopted.append(bo.client_order_id)
    engine.record_event(ts, "reconcile", f"adopted {tag} order {bo.client_order_id} "
                                         f"{bo.side.value} {bo.qty} {bo.symbol}")


def _resolve(engine: Engine, snap: BrokerSnapshot, report: ReconcileReport, busy: frozenset[str]) -> None:
    venue = {o.client_order_id: o for o in snap.orders}
    now = snap.ts
    for cid, order in list(engine.open_orders.items()):
        bo = venue.get(cid)
        if bo is None and cid in busy:
            continue  # sent while the venue was being asked: the next pass sees it
        if bo is not None and bo.status.is_open:
            if bo.status is not order.status:  # e.g. NEW (write-ahead) -> ACCEPTED
                engine.on_broker_event(OrderUpdate(cid, now, bo.status, bo.filled_qty, bo.avg_fill_price,
                                                   bo.broker_order_id, "reconcile"))
            continue
        if bo is not None:
            up = OrderUpdate(cid, now, bo.status, bo.filled_qty, bo.avg_fill_price, bo.broker_order_id, "reconcile")
        elif order.filled >= order.request.qty:
            up = OrderUpdate(cid, now, OrderStatus.FILLED, order.filled, 0.0, "", "reconcile: filled")
        else:
            up = OrderUpdate(cid, now, OrderStatus.CANCELED, order.filled, 0.0, "", "reconcile: unknown at broker")
        engine.on_broker_event(up)
        report.resolved[cid] = up.status


def _position_diffs(engine: Engine, snap: BrokerSnapshot) -> dict[str, tuple[int, int]]:
    ours = {p.symbol: p.qty for p in engine.portfolio.positions() if p.qty}
    diffs = {}
    for sym in sorted(set(ours) | set(snap.positions)):
        a, b = ours.get(sym, 0), snap.positions.get(sym, 0)
        if a != b:
            diffs[sym] = (a, b)
    return diffs


def apply_snapshot(engine: Engine, snap: BrokerSnapshot, report: ReconcileReport,
                   busy: frozenset[str] = frozenset()) -> None:
    """Steps 1-3 (synchronous: nothing else runs on the loop meanwhile). ``busy``: our orders
    that may have reached the venue after it was asked; absent from the snapshot, they stay open."""
    for bo in snap.open_orders:
        if bo.client_order_id not in engine.open_orders:
            later = sum(f.qty for f in snap.fills if f.client_order_id == bo.client_order_id)
            _adopt(engine, bo, later, report)
    _book_fills(engine, snap, report)
    _resolve(engine, snap, report, busy)


async def reconcile(engine: Engine, broker: ReconcilableBroker, *, tolerance: int = 0,
                    on_mismatch: TradingState = TradingState.REDUCING, lookback_hours: float = 24.0,
                    settle_seconds: float = 0.5,
                    previous: dict[str, tuple[int, int]] | None = None, adopt: bool = False,
                    cash_watch: CashWatch | None = None) -> ReconcileReport:
    """One full pass (see the module docstring). Raises BrokerError when the venue is unreachable.

    ``previous``: the last pass's differences; one that persists unchanged is not recorded or
    alerted again (a periodic pass would otherwise repeat it every few minutes).
    ``adopt``: the store has no books yet: take the account's positions and cash as ours
    (algobotd/brokers/account.py). ``cash_watch``: book cash that moved without a fill."""
    follow = getattr(broker, "follow", None)
    report = ReconcileReport(engine.clock.now())
    for attempt in range(2):
        if attempt:  # maybe a fill in flight: look again before blaming anyone
            await asyncio.sleep(settle_seconds)
        asked = engine.clock.now()
        in_flight = set(getattr(broker, "in_flight", ()))  # submits the venue may not show yet
        snap = await broker.snapshot(fills_since(engine, lookback_hours))
        busy = frozenset(in_flight | {cid for cid, o in engine.open_orders.items() if o.request.created_ts >= asked})
        report.ts, report.broker_equity, report.broker_cash = snap.ts, snap.equity, snap.cash
        apply_snapshot(engine, snap, report, busy)
        if follow is not None:
            for cid in report.adopted:
                follow(cid)
        if adopt and not attempt and adopt_account(engine, snap, report) and cash_watch is not None:
            cash_watch.needs_opening = False
        diffs = _position_diffs(engine, snap)
        if not diffs:
            break
    report.position_diffs = diffs
    if cash_watch is not None:
        report.cash_booked = cash_watch.observe(engine, snap, positions_agree=not diffs)
    worst = 0
    state = engine.state.state.value
    new = {s: d for s, d in diffs.items() if (previous or {}).get(s) != d}
    for sym, (ours, venue) in diffs.items():
        delta = venue - ours
        worst = max(worst, abs(delta))
        if sym not in new:
            continue
        engine.store.add("risk_events", (snap.ts, "reconcile", sym, float(delta), float(tolerance), state,
                                         f"position differs: ours {ours}, broker {venue}"))
        engine.record_event(snap.ts, "reconcile", f"{sym} position differs: ours {ours}, broker {venue}")
    if worst > tolerance:
        msg = f"positions differ from the broker beyond {tolerance} shares: " + ", ".join(
            f"{s} ours {a} broker {b}" for s, (a, b) in diffs.items())
        if new:
            raise_alert(engine, snap.ts, "critical", msg,
                        positions={s: {"ours": a, "broker": b} for s, (a, b) in diffs.items()})
        change = engine.state.escalate(on_mismatch, msg, RECONCILE_ACTOR, snap.ts)
        if await engine.set_state(change):  # flushes: the alert and risk rows are durable too
            report.escalated_to = on_mismatch
    if engine.state.state is TradingState.HALTED and snap.open_orders:
        await broker.cancel_all()  # HALTED means no working orders, also after a reconnect
    await engine.store.flush()
    log.info("reconciled", summary=report.summary())
    return report


class Reconciler:
    """Keeps the order gate closed until the books agree; re-runs after every reconnect."""

    def __init__(self, engine: Engine, broker: ReconcilableBroker, *, tolerance: int = 0,
                 on_mismatch: TradingState = TradingState.REDUCING, lookback_hours: float = 24.0,
                 retry_seconds: float = 2.0, lock: asyncio.Lock | None = None) -> None:
        self.engine = engine
        self.broker = broker
        self.kw = {"tolerance": tolerance, "on_mismatch": on_mismatch, "lookback_hours": lookback_hours}
        self.retry_seconds = retry_seconds
        self.last: ReconcileReport | None = None
        self.runs = 0
        self.cash_watch = CashWatch()
        # the daemon passes its engine lock: a pass never runs while a batch's orders sit between
        # their write-ahead and the broker (they would look unknown at the venue and be closed)
        self._lock = lock or asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._external_pending = False
        self._closing = False
        broker.accepting_orders = False
        broker.set_connection_listener(self.on_connection)
        set_external = getattr(broker, "set_external_listener", None)
        if set_external is not None:
            set_external(self.on_external)

    async def run_once(self, adopt: bool = False) -> ReconcileReport:
        """Reconcile now and open the order gate (start-up calls this before trading; ``adopt``:
        the store has no books yet, see :func:`reconcile`).

        The gate is not closed here: it is closed from construction until the first pass and
        from a disconnect until the pass after the reconnect; a periodic pass while trading
        leaves orders flowing (orders sent meanwhile are ``busy``, never mistaken for lost).
        """
        async with self._lock:
            report = await reconcile(self.engine, self.broker, previous=self._previous(), adopt=adopt,
                                     cash_watch=self.cash_watch, **self.kw)
            self.last = report
            self.runs += 1
            self.broker.accepting_orders = self.broker.connected
            return report

    def _previous(self) -> dict[str, tuple[int, int]] | None:
        return self.last.position_diffs if self.last is not None else None

    def on_connection(self, up: bool) -> None:
        if self._closing:
            return
        if up:
            self._spawn(self._after_reconnect(), "reconcile-after-reconnect")
        else:
            self.broker.accepting_orders = False
            self._spawn(self._on_disconnect(), "broker-disconnected")

    def on_external(self, reason: str) -> None:
        """Activity on a foreign order (or an order whose fate is unknown): one extra pass,
        coalesced, adopts, resolves or records it."""
        log.warning("broker asks for a reconciliation pass", reason=reason)
        if not self._external_pending and not self._closing:
            self._external_pending = True
            self._spawn(self._external_pass(), "reconcile-external")

    async def _external_pass(self) -> None:
        await asyncio.sleep(0.2)  # let the burst of updates for one foreign order arrive
        self._external_pending = False
        try:
            async with self._lock:
                self.last = await reconcile(self.engine, self.broker, previous=self._previous(),
                                            cash_watch=self.cash_watch, **self.kw)
                self.runs += 1
        except Exception as exc:
            log.warning("reconcile after foreign order failed", error=str(exc))

    def _spawn(self, coro: object, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_disconnect(self) -> None:
        eng = self.engine
        now = eng.clock.now()
        change = eng.state.escalate(TradingState.REDUCING, "broker connection lost", DISCONNECT_ACTOR, now)
        await eng.set_state(change)

    async def _after_reconnect(self) -> None:
        while self.broker.connected and not self._closing:
            try:
                report = await self.run_once()
                log.info("reconciled after reconnect", summary=report.summary())
                return
            except Exception as exc:  # keep the gate closed and try again while connected
                log.warning("reconcile after reconnect failed", error=str(exc))
                await asyncio.sleep(self.retry_seconds)

    async def close(self, timeout: float = 5.0) -> None:
        """Let passes in flight finish (cancelling one mid-flush would cancel the store's shared
        flush future under every other waiter); cancel only what is still stuck after ``timeout``."""
        self._closing = True
        tasks = list(self._tasks)
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=timeout)
            for t in stuck:
                t.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)


async def start_reconciliation(engine: Engine, broker: Broker, cfg: Config,
                               lock: asyncio.Lock | None = None) -> Reconciler | None:
    """Start-up: reconcile once (trading waits for it) and keep doing so after every reconnect.

    None for brokers whose book is our own store (paper). Raises BrokerError when the first
    pass cannot reach the venue: the daemon must not trade on books it could not check.
    """
    if not hasattr(broker, "snapshot"):
        return None
    b = cfg.broker
    rec = Reconciler(engine, broker, tolerance=b.position_tolerance,  # type: ignore[arg-type]
                     on_mismatch=TradingState(b.on_mismatch), lookback_hours=b.fills_lookback_hours, lock=lock)
    # a store without books meets the account: its cash and positions become ours; books without
    # an opening balance take the venue's cash once positions agree (account.py)
    rec.cash_watch.needs_opening = not has_cash_events(engine.store.con)
    report = await rec.run_once(adopt=not has_books(engine.store.con))
    log.info("start-up reconciliation done", summary=report.summary())
    # sizing uses the engine's books; a store with history keeps them (differences are recorded
    # and escalated above, cash differences booked by the CashWatch once confirmed): say so
    equity = engine.portfolio.equity
    if report.broker_equity and abs(equity - report.broker_equity) > 0.05 * report.broker_equity:
        log.warning("engine equity differs from the broker account's; sizing uses the engine's",
                    engine_equity=round(equity, 2), broker_equity=round(report.broker_equity, 2),
                    hint="positions that differ are reported above; a cash difference is booked as a "
                         "deposit/withdrawal once it persists with no fill")
    return rec
