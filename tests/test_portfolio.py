"""Portfolio accounting: hand-computed cases plus property tests of the P&L identities."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from algobotd.domain import Fill, Side
from algobotd.portfolio import Portfolio
from algobotd.symbols import SymbolIndex

CASH = 100_000.0


def fill(n: int, symbol: str, side: Side, qty: int, price: float, commission: float = 0.0) -> Fill:
    return Fill(f"x{n}", f"o{n}", symbol, side, qty, price, commission, ts=n)


def assert_invariants(p: Portfolio) -> None:
    """equity − initial == realized + unrealized − commissions; cash + Σ qty×mark == equity."""
    eq = p.equity
    tol = 1e-9 * max(1.0, abs(eq), p.initial_cash)
    pnl = p.realized_pnl + p.unrealized_pnl - p.commissions
    assert abs((eq - p.initial_cash) - pnl) <= tol, (eq - p.initial_cash, pnl)
    # recompute the book value independently, one position at a time
    names = p.symbols.symbols
    value = 0.0
    for i, q in enumerate(p.qty.tolist()):
        last = p.last[i]
        value += q * (p.avg_cost[i] if math.isnan(last) else last)
        pos = p.position(names[i])
        assert (pos is None) == (q == 0)
    assert abs(p.cash + value - eq) <= tol
    assert p.drawdown >= 0.0


# --- hand-computed ------------------------------------------------------------------------------


def test_average_cost_then_partial_close() -> None:
    p = Portfolio(CASH, SymbolIndex(["AAA"]))
    assert p.apply_fill(fill(1, "AAA", Side.BUY, 100, 10.0))
    assert p.apply_fill(fill(2, "AAA", Side.BUY, 100, 12.0))
    pos = p.position("AAA")
    assert pos is not None and pos.qty == 200 and pos.avg_cost == pytest.approx(11.0)
    assert p.cash == pytest.approx(CASH - 2200.0)

    p.apply_fill(fill(3, "AAA", Side.SELL, 150, 13.0))
    pos = p.position("AAA")
    assert pos is not None and pos.qty == 50 and pos.avg_cost == pytest.approx(11.0)
    assert p.realized_pnl == pytest.approx(300.0)  # 150 × (13 − 11)
    assert p.unrealized_pnl == pytest.approx(50 * (10.0 - 11.0))  # last = first fill price
    assert_invariants(p)
    p.mark_symbol("AAA", 13.0)
    assert p.unrealized_pnl == pytest.approx(100.0)
    assert_invariants(p)


def test_last_price_set_by_first_fill_only() -> None:
    p = Portfolio(CASH, SymbolIndex(["AAA"]))
    p.apply_fill(fill(1, "AAA", Side.BUY, 10, 10.0))
    p.apply_fill(fill(2, "AAA", Side.BUY, 10, 20.0))
    assert p.last[0] == 10.0  # only set while unknown; marks own it afterwards
    assert p.unrealized_pnl == pytest.approx(20 * (10.0 - 15.0))
    assert_invariants(p)


def test_full_close_resets_avg_cost() -> None:
    p = Portfolio(CASH, SymbolIndex(["AAA"]))
    p.apply_fill(fill(1, "AAA", Side.BUY, 100, 10.0, commission=1.0))
    p.apply_fill(fill(2, "AAA", Side.SELL, 100, 9.0, commission=1.0))
    assert p.position("AAA") is None and p.positions() == []
    assert p.avg_cost[0] == 0.0
    assert p.realized_pnl == pytest.approx(-100.0)  # commission excluded ...
    assert p.commissions == pytest.approx(2.0)  # ... and reported separately
    assert p.equity == pytest.approx(CASH - 102.0)
    assert_invariants(p)


def test_flip_long_to_short_and_back() -> None:
    p = Portfolio(CASH, SymbolIndex(["AAA"]))
    p.apply_fill(fill(1, "AAA", Side.BUY, 100, 10.0))
    p.apply_fill(fill(2, "AAA", Side.SELL, 250, 12.0))  # close 100 (+200), open 150 short @ 12
    pos = p.position("AAA")
    assert pos is not None and pos.qty == -150 and pos.avg_cost == pytest.approx(12.0)
    assert p.realized_pnl == pytest.approx(200.0)

    p.mark_symbol("AAA", 11.0)
    assert p.unrealized_pnl == pytest.approx(150.0)  # short gains as the price falls
    assert p.gross_exposure == pytest.approx(1650.0)
    assert p.net_exposure == pytest.approx(-1650.0)
    assert_invariants(p)

    p.apply_fill(fill(3, "AAA", Side.BUY, 50, 13.0))  # cover 50 at a loss of 1 each
    assert p.realized_pnl == pytest.approx(150.0)
    assert p.position("AAA").avg_cost == pytest.approx(12.0)  # type: ignore[union-attr]
    p.apply_fill(fill(4, "AAA", Side.BUY, 300, 8.0))  # cover 100 (+400), open 200 long @ 8
    pos = p.position("AAA")
    assert pos is not None and pos.qty == 200 and pos.avg_cost == pytest.approx(8.0)
    assert p.realized_pnl == pytest.approx(550.0)
    assert_invariants(p)


def test_short_increase_blends_cost() -> None:
    p = Portfolio(CASH, SymbolIndex(["AAA"]))
    p.apply_fill(fill(1, "AAA", Side.SELL, 100, 20.0))
    p.apply_fill(fill(2, "AAA", Side.SELL, 300, 24.0))
    pos = p.position("AAA")
    assert pos is not None and pos.qty == -400 and pos.avg_cost == pytest.approx(23.0)
    assert p.cash == pytest.approx(CASH + 2000.0 + 7200.0)
    assert_invariants(p)


def test_duplicate_exec_id_is_ignored() -> None:
    p = Portfolio(CASH, SymbolIndex(["AAA"]))
    f = fill(1, "AAA", Side.BUY, 100, 10.0, commission=1.0)
    assert p.apply_fill(f) is True
    assert p.apply_fill(f) is False
    assert p.qty[0] == 100 and p.cash == pytest.approx(CASH - 1001.0) and p.commissions == 1.0


def test_invalid_fill_is_refused_and_not_marked_seen() -> None:
    p = Portfolio(CASH, SymbolIndex(["AAA"]))
    with pytest.raises(ValueError):
        p.apply_fill(Fill("x1", "o1", "AAA", Side.BUY, 0, 10.0, 0.0, 1))
    with pytest.raises(ValueError):
        p.apply_fill(Fill("x1", "o1", "AAA", Side.BUY, 5, float("nan"), 0.0, 1))
    assert p.apply_fill(Fill("x1", "o1", "AAA", Side.BUY, 5, 10.0, 0.0, 1))


def test_mark_is_vectorised_and_ignores_nan_and_mask() -> None:
    syms = SymbolIndex(["A", "B", "C", "D"])
    p = Portfolio(CASH, syms)
    p.apply_fill(fill(1, "A", Side.BUY, 10, 5.0))
    p.apply_fill(fill(2, "B", Side.SELL, 10, 7.0))
    p.mark(np.array([6.0, np.nan, 3.0, -1.0]))
    np.testing.assert_array_equal(p.last[:2], [6.0, 7.0])
    assert p.last[2] == 3.0 and math.isnan(p.last[3])
    p.mark(np.array([9.0, 8.0, 4.0, 4.0]), mask=np.array([False, True, True, False]))
    np.testing.assert_array_equal(p.last, [6.0, 8.0, 4.0, np.nan])
    assert p.unrealized_pnl == pytest.approx(10 * 1.0 - 10 * 1.0)
    assert_invariants(p)


def test_arrays_grow_with_symbol_index() -> None:
    syms = SymbolIndex(["A"])
    p = Portfolio(CASH, syms)
    syms.add("B")
    p.mark(np.array([1.0, 2.0]))
    assert len(p.qty) == len(p.last) == 2 and p.last[1] == 2.0
    p.mark(np.array([1.5]))  # a batch built before the index grew
    assert p.last[0] == 1.5 and p.last[1] == 2.0
    p.apply_fill(fill(1, "NEW", Side.BUY, 3, 4.0))  # unknown symbols (restore) are added
    assert syms["NEW"] == 2 and p.qty[2] == 3
    with pytest.raises(ValueError):
        p.mark(np.ones(10))


def test_nan_last_counts_at_avg_cost() -> None:
    p = Portfolio(CASH, SymbolIndex(["A"]))
    p.apply_fill(fill(1, "A", Side.BUY, 10, 5.0))
    p.last[0] = np.nan  # e.g. restored books before the first bar
    assert p.equity == pytest.approx(CASH)
    assert p.unrealized_pnl == 0.0
    assert p.position("A").last_price == 5.0  # type: ignore[union-attr]


def test_high_water_mark_and_drawdown() -> None:
    p = Portfolio(CASH, SymbolIndex(["A"]))
    p.apply_fill(fill(1, "A", Side.BUY, 1000, 10.0))
    p.mark(np.array([20.0]))
    assert p.update_hwm() == 0.0 and p.high_water_mark == pytest.approx(CASH + 10_000.0)
    p.mark(np.array([15.0]))
    assert p.drawdown == 0.0  # not updated until update_hwm
    dd = p.update_hwm()
    assert dd == pytest.approx(5_000.0 / 110_000.0) and p.drawdown == dd
    assert p.high_water_mark == pytest.approx(110_000.0)
    acct = p.account(123)
    assert acct.ts == 123 and acct.equity == pytest.approx(105_000.0)
    assert acct.drawdown == dd and acct.unrealized_pnl == pytest.approx(5_000.0)
    assert acct.gross_exposure == pytest.approx(15_000.0)


def test_restore_replays_and_deduplicates() -> None:
    fills = [
        fill(1, "A", Side.BUY, 100, 10.0, 1.0),
        fill(2, "B", Side.SELL, 50, 30.0, 1.0),
        fill(3, "A", Side.SELL, 40, 11.0, 1.0),
    ]
    live = Portfolio(CASH, SymbolIndex(["A", "B"]))
    for f in fills:
        live.apply_fill(f)
    restarted = Portfolio(CASH, SymbolIndex(["A", "B"]))
    assert restarted.restore(fills + fills) == 3
    assert restarted.cash == pytest.approx(live.cash)
    assert restarted.positions() == live.positions()
    assert restarted.realized_pnl == pytest.approx(live.realized_pnl)


# --- properties ---------------------------------------------------------------------------------

fill_steps = st.lists(
    st.tuples(
        st.integers(0, 2),  # symbol
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 500),
        st.floats(0.5, 500.0, allow_nan=False),
        st.sampled_from([0.0, 1.0, 2.5]),
        st.one_of(st.none(), st.floats(0.5, 500.0, allow_nan=False)),  # mark after the fill
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(fill_steps)
def test_accounting_properties(steps: list[tuple[int, Side, int, float, float, float | None]]) -> None:
    names = ["A", "B", "C"]
    p = Portfolio(CASH, SymbolIndex(names))
    flows = {s: 0.0 for s in names}  # −Σ signed qty × price since inception, per symbol
    prices: dict[str, list[float]] = {s: [] for s in names}  # fill prices of the current side
    for n, (k, side, qty, price, comm, mark) in enumerate(steps):
        sym = names[k]
        before = int(p.qty[k])
        assert p.apply_fill(fill(n, sym, side, qty, price, comm))
        after = int(p.qty[k])
        flows[sym] -= side.sign * qty * price
        if before == 0 or (before > 0) != (after > 0):
            prices[sym] = []  # a new position starts (from flat or by flipping)
        if after != 0 and (before == 0 or (side.sign > 0) == (after > 0)):
            prices[sym].append(price)
        if after == 0:  # flat: everything realized, no cost left
            assert p.avg_cost[k] == 0.0
            assert p.realized[k] == pytest.approx(flows[sym], rel=1e-9, abs=1e-6)
        else:  # the average cost is an average of the current side's fill prices
            lo, hi = min(prices[sym]), max(prices[sym])
            assert lo * (1 - 1e-12) <= p.avg_cost[k] <= hi * (1 + 1e-12)
        if mark is not None:
            p.mark_symbol(sym, mark)
        p.update_hwm()
        assert_invariants(p)
    snapshot = (p.cash, p.qty.copy(), p.avg_cost.copy(), p.realized.copy(), p.commissions)
    for n, (k, side, qty, price, comm, _) in enumerate(steps):
        assert not p.apply_fill(fill(n, names[k], side, qty, price, comm))
    assert p.cash == snapshot[0] and p.commissions == snapshot[4]
    np.testing.assert_array_equal(p.qty, snapshot[1])
    np.testing.assert_array_equal(p.avg_cost, snapshot[2])
    np.testing.assert_array_equal(p.realized, snapshot[3])
