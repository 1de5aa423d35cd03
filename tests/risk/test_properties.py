"""Hypothesis: for any sequence of prices, predictions, fills, orders from any source and operator
commands, what reaches the broker never breaches a cap, the state never moves up without an
operator resume, REDUCING never lets a position grow or flip, HALTED lets only verified flatten
orders through.

The engine, the paper broker and the DuckDB store are real; the broker is subclassed only to
record what it is asked to submit, with the engine's books at that moment.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from algobotd.brokers.paper import PaperBroker
from algobotd.domain import OrderRequest, OrderType, TradingState
from algobotd.risk.state import is_reducing
from tests.risk.helpers import Rig, batch, config

SYM = ("AAA", "BBB", "CCC", "DDD")
OVERRIDES = ('model.kind="sma_cross"', "model.fast=2", "model.slow=3", "risk.vol_min_bars=2", "risk.vol_halflife_bars=5",
             "risk.kelly_fraction=1.0", "risk.prior_win_rate=0.9", "risk.max_position_pct=0.05", "risk.max_gross_pct=0.12",
             "risk.max_order_value=40000.0", "risk.orders_per_second=4.0", "risk.risk_budget_pct=5.0",
             "risk.daily_loss_pct=0.05", "risk.max_drawdown_pct=0.08")
TOL = 1 + 1e-9


class RecordingBroker(PaperBroker):
    """The paper broker, plus a log of every submission with the engine's view at that moment."""

    engine = None
    violations: list[str]

    async def submit(self, orders: list[OrderRequest]) -> None:
        self._check(orders)
        await super().submit(orders)

    def _check(self, orders: list[OrderRequest]) -> None:
        e = self.engine
        cfg = e.cfg.risk
        state = e.state.state
        pos = e.portfolio.qty.copy()
        px = np.nan_to_num(e.portfolio.last.copy())
        equity = e.portfolio.equity
        held = pos + e.pending  # already includes these orders: take them out again
        for o in orders:
            held[e.symbols[o.symbol]] -= o.side.sign * o.qty
        for o in orders:
            i, s = e.symbols[o.symbol], o.side.sign * o.qty
            h, after = int(held[i]), int(held[i]) + s
            reducing = is_reducing(h, s) and is_reducing(int(pos[i]), s)
            where = f"{o.client_order_id} {o.reason} {s:+d} held {h} pos {pos[i]} state {state.value}"
            if not (isinstance(o.qty, int) and o.qty > 0):
                self.violations.append(f"bad qty {where}")
            if state is TradingState.HALTED and not (o.reason.startswith("flatten") and reducing):
                self.violations.append(f"HALTED let through {where}")
            if state is TradingState.REDUCING and not reducing:
                self.violations.append(f"REDUCING let through growth/flip {where}")
            if o.qty * px[i] > cfg.max_order_value * TOL:
                self.violations.append(f"order value {o.qty * px[i]:.0f} {where}")
            if abs(after) > abs(h) or (after != 0 and np.sign(after) != np.sign(h)):
                if abs(after) * px[i] > cfg.max_position_pct * equity * TOL:
                    self.violations.append(f"position cap {abs(after) * px[i]:.0f} {where}")
                held[i] = after
                if float(np.abs(held) @ px) > cfg.max_gross_pct * equity * TOL:
                    self.violations.append(f"gross cap {float(np.abs(held) @ px):.0f} {where}")
                if not cfg.allow_short and after < 0:
                    self.violations.append(f"short {where}")
            held[i] = after


returns = st.floats(-0.1, 0.1, allow_nan=False)
step = st.one_of(
    st.tuples(st.just("bar"), st.lists(returns, min_size=4, max_size=4), st.sampled_from([0.0, 50.0, 1e6])),
    st.tuples(st.just("tick"), st.integers(0, 3), returns),
    st.tuples(st.just("order"), st.integers(0, 3), st.integers(-3000, 3000).filter(bool),
              st.sampled_from(["signal", "manual", "flatten by fake"]), st.sampled_from([None, -0.2, 0.01])),
    st.tuples(st.sampled_from(["halt", "reduce", "resume", "flatten"])),
)


async def run(tmp: Path, steps: list[tuple], allow_short: bool) -> tuple[list[str], list[tuple]]:
    cfg = config(tmp, *OVERRIDES, f"risk.allow_short={str(allow_short).lower()}")
    rig = Rig(tmp, cfg, SYM)
    broker = RecordingBroker(cfg.broker.paper, rig.symbols, rig.clock.now)
    broker.violations = []
    rig.broker = broker
    rig.engine.broker = broker
    broker.engine = rig.engine
    broker.set_sink(rig.engine.on_broker_event)
    await broker.connect()
    e = rig.engine
    prices = np.full(4, 100.0)
    for _ in range(4):  # warm the model and the volatility estimates
        prices = prices * (1 + np.array([0.01, -0.01, 0.02, -0.005]))
        await rig.bar(prices)
    severity = e.state.state.severity
    for s in steps:
        kind = s[0]
        if kind == "bar":
            prices = np.maximum(prices * (1 + np.array(s[1])), 1.0)
            await e.process(batch(rig.k, SYM, prices, volume=s[2]))
            rig.k += 1
        elif kind == "tick":
            prices[s[1]] = max(prices[s[1]] * (1 + s[2]), 1.0)
            await e.on_price_update(SYM[s[1]], rig.clock.now(), price=float(prices[s[1]]))
        elif kind == "order":
            _, i, q, reason, offset = s
            typ = OrderType.MARKET if offset is None else OrderType.LIMIT
            await e.send([rig.order(SYM[i], q, reason, typ, None if offset is None else float(prices[i] * (1 + offset)))])
        elif kind in ("halt", "reduce"):
            state = TradingState.HALTED if kind == "halt" else TradingState.REDUCING
            await e.set_state(e.state.escalate(state, "prop", "operator:uid=1", rig.clock.now()))
        elif kind == "resume":
            await e.set_state(e.state.resume("operator:uid=1", rig.clock.now()))
        else:
            await e.flatten("operator:uid=1")
        now = e.state.state.severity
        if now < severity and kind != "resume":
            broker.violations.append(f"state moved up from severity {severity} to {now} on {kind}")
        severity = now
    rows = await rig.query("SELECT state, reason, actor FROM trading_state ORDER BY ts, rowid")
    await rig.close()
    return broker.violations, rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=30), allow_short=st.booleans())
def test_no_approved_order_breaks_the_rules(steps: list[tuple], allow_short: bool) -> None:
    with tempfile.TemporaryDirectory() as d:
        violations, rows = asyncio.run(run(Path(d), steps, allow_short))
    assert violations == []
    order = {s.value: s.severity for s in TradingState}
    prev = 0
    for state, reason, actor in rows:  # every upward move in the latch is an operator resume
        if order[state] < prev:
            assert reason == "operator resume" and actor.startswith("operator:"), (state, reason, actor)
        prev = order[state]
