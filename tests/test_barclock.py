"""BarClock: completion, grace with stale marks, edge validation, quotes, sub-bar aggregation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from algobotd.domain import NS_PER_SECOND, Bar, Quote
from algobotd.feeds.barclock import BarClock

S = NS_PER_SECOND
T0 = 1_704_205_800 * S  # 14:30:00 UTC, on the 60 s grid
SYMS = ("AAA", "BBB", "CCC")


def bar(sym: str, ts: int, c: float = 10.0, **kw: float) -> Bar:
    fields = {"open": c, "high": c + 0.1, "low": c - 0.1, "close": c, "volume": 100.0}
    fields.update(kw)
    return Bar(sym, ts, fields["open"], fields["high"], fields["low"], fields["close"], fields["volume"])


def clock(grace: float = 2.0, **kw: int) -> BarClock:
    return BarClock(SYMS, 60, grace, **kw)


def test_completes_when_every_symbol_reported() -> None:
    bc = clock()
    assert bc.add(bar("AAA", T0, 10.0)) == []
    assert bc.add(bar("CCC", T0, 30.0)) == []
    out = bc.add(bar("BBB", T0, 20.0))
    assert len(out) == 1
    b = out[0]
    assert b.ts == T0 and b.symbols == SYMS
    assert b.close.tolist() == [10.0, 20.0, 30.0] and b.valid.all()
    assert b.volume.tolist() == [100.0] * 3
    assert bc.pending == [] and bc.closed_upto == T0


def test_flush_due_after_grace_marks_missing_stale() -> None:
    bc = clock(grace=2.0)
    bc.add(bar("AAA", T0))
    bc.add(bar("BBB", T0))
    end = T0 + 60 * S
    assert bc.flush_due(end + 1 * S) == []  # still within grace
    out = bc.flush_due(end + 2 * S)
    assert len(out) == 1
    b = out[0]
    assert b.valid.tolist() == [True, True, False]
    assert math.isnan(b.close[2]) and math.isnan(b.open[2]) and math.isnan(b.volume[2])
    # The late symbol's bar for the closed interval is refused and counted.
    assert bc.add(bar("CCC", T0)) == []
    assert bc.dropped == {"late": 1}


def test_later_interval_closes_older_one_once_grace_passed() -> None:
    bc = clock(grace=2.0)
    bc.add(bar("AAA", T0))
    bc.add(bar("BBB", T0))
    out = bc.add(bar("AAA", T0 + 60 * S))  # completes at T0+120 s: far past T0's grace
    assert [b.ts for b in out] == [T0]
    assert out[0].valid.tolist() == [True, True, False]
    assert bc.pending == [T0 + 60 * S]
    # A grace longer than a bar keeps the older interval open for its stragglers.
    slow = clock(grace=90.0)
    slow.add(bar("AAA", T0))
    assert slow.add(bar("AAA", T0 + 60 * S)) == []
    assert slow.add(bar("BBB", T0)) == [] and slow.pending == [T0, T0 + 60 * S]
    done = slow.add(bar("CCC", T0))
    assert [b.ts for b in done] == [T0] and done[0].valid.all()


def test_own_interval_not_closed_by_its_first_bar_even_without_grace() -> None:
    bc = clock(grace=0.0)
    assert bc.add(bar("AAA", T0)) == []
    assert bc.add(bar("BBB", T0)) == []
    assert len(bc.add(bar("CCC", T0))) == 1


def test_completion_also_emits_older_open_intervals_in_order() -> None:
    bc = clock(grace=120.0)
    bc.add(bar("AAA", T0))
    for s in SYMS:
        out = bc.add(bar(s, T0 + 60 * S))
    assert [b.ts for b in out] == [T0, T0 + 60 * S]
    assert out[0].valid.tolist() == [True, False, False]


@pytest.mark.parametrize(("kw", "reason"), [
    ({"close": float("nan")}, "nan"),
    ({"volume": float("inf")}, "nan"),
    ({"low": 0.0}, "non_positive_price"),
    ({"open": -1.0}, "non_positive_price"),
    ({"high": 9.0, "low": 11.0}, "high_below_low"),
    ({"high": 9.95}, "ohlc_inconsistent"),
    ({"volume": -1.0}, "negative_volume"),
])
def test_bad_bars_dropped(kw: dict[str, float], reason: str) -> None:
    bc = clock()
    assert bc.add(bar("AAA", T0, 10.0, **kw)) == []
    assert bc.dropped == {reason: 1}
    assert bc.pending == []  # nothing of it was kept


def test_duplicate_out_of_order_unknown() -> None:
    bc = clock()
    bc.add(bar("AAA", T0 + 60 * S, 10.0))
    assert bc.add(bar("AAA", T0 + 60 * S, 99.0)) == []
    assert bc.add(bar("AAA", T0, 10.0)) == []
    assert bc.add(bar("ZZZ", T0 + 60 * S)) == []
    assert bc.dropped == {"duplicate": 1, "out_of_order": 1, "unknown_symbol": 1}
    out = bc.add(bar("BBB", T0 + 60 * S)) + bc.add(bar("CCC", T0 + 60 * S))
    assert out[0].close[0] == 10.0  # the first bar stood; the duplicate never reached the batch


def test_quotes_fill_bid_ask_and_carry_forward() -> None:
    bc = clock()
    bc.add_quote(Quote("AAA", T0 + 10 * S, 9.9, 10.1))
    bc.add_quote(Quote("AAA", T0 + 50 * S, 9.95, 10.05))  # the latest quote of the interval wins
    bc.add_quote(Quote("AAA", T0 + 30 * S, 9.0, 11.0))  # older than what we hold
    bc.add_quote(Quote("BBB", T0 + 5 * S, 20.1, 19.9))  # crossed
    bc.add_quote(Quote("BBB", T0 + 6 * S, float("nan"), 20.0))
    bc.add_quote(Quote("ZZZ", T0 + 6 * S, 1.0, 2.0))
    out = [b for s in SYMS for b in bc.add(bar(s, T0))]
    assert out[0].bid[0] == 9.95 and out[0].ask[0] == 10.05
    assert np.isnan(out[0].bid[1:]).all() and np.isnan(out[0].ask[1:]).all()
    assert bc.dropped == {"quote_invalid": 2, "quote_unknown_symbol": 1}
    nxt = [b for s in SYMS for b in bc.add(bar(s, T0 + 60 * S))]
    assert nxt[0].bid[0] == 9.95  # no new quote: the last known one still holds
    bc.add_quote(Quote("AAA", T0 + 5 * S, 9.0, 11.0))
    assert bc.dropped["quote_late"] == 1


def test_quote_only_interval_emits_nothing() -> None:
    bc = clock()
    bc.add_quote(Quote("AAA", T0, 9.9, 10.1))
    assert bc.flush_due(T0 + 3600 * S) == []
    out = [b for s in SYMS for b in bc.add(bar(s, T0 + 7200 * S))]
    assert len(out) == 1 and out[0].bid[0] == 9.9


def test_sub_bars_aggregate_into_the_interval() -> None:
    bc = BarClock(("AAA", "BBB"), 60, 2.0, source_seconds=5)
    out = []
    for k in range(12):
        px = 10.0 + k
        out += bc.add(bar("AAA", T0 + 5 * k * S, px, high=px + 0.5, low=px - 0.5, volume=10.0))
    assert out == []  # AAA is complete, BBB is not
    out = bc.add(bar("BBB", T0 + 55 * S, 20.0))
    assert len(out) == 1
    b = out[0]
    assert (b.open[0], b.high[0], b.low[0], b.close[0], b.volume[0]) == (10.0, 21.5, 9.5, 21.0, 120.0)
    assert b.valid.all()
    with pytest.raises(ValueError):
        BarClock(("AAA",), 60, 2.0, source_seconds=7)


def test_quotes_and_trades_give_intrabar_flow() -> None:
    """Live quotes/prints summarised per interval like the simulator's flow: CKS OFI over the
    quote updates, depth at the end, tick-rule signed volume; NaN for a symbol without any."""
    from algobotd.domain import Bar, Quote, Trade
    from algobotd.features.intrabar import ofi_from_quotes

    ns = 1_000_000_000
    t0 = 1_704_205_800 * ns  # 2024-01-02 14:30 UTC, on the 60 s grid
    clock = BarClock(("AAA", "BBB"), 60, 0.0)
    quotes = [Quote("AAA", t0 + k * ns, bid, ask, bs, as_) for k, (bid, ask, bs, as_) in enumerate(
        [(10.00, 10.02, 300, 200), (10.01, 10.02, 100, 250), (10.01, 10.03, 150, 400), (10.00, 10.02, 500, 100)])]
    for q in quotes:
        clock.add_quote(q)
    for k, (px, size) in enumerate([(10.01, 100), (10.02, 50), (10.02, 30), (10.00, 70)]):
        clock.add_trade(Trade("AAA", t0 + (10 + k) * ns, px, size))
    clock.add_trade(Trade("AAA", t0 + 11 * ns, -1.0, 5))  # bad print: counted, not used
    out = clock.add(Bar("AAA", t0, 10, 10.1, 9.9, 10.05, 1000)) + clock.add(Bar("BBB", t0, 5, 5.1, 4.9, 5.0, 10))
    assert len(out) == 1 and out[0].flow is not None
    flow = out[0].flow
    assert flow.ofi[0] == ofi_from_quotes(quotes)
    assert (flow.bid_size[0], flow.ask_size[0]) == (500, 100)  # depth at the interval end
    # first print has no previous price: split; then up (buy), repeat keeps buy, down (sell)
    assert flow.buy_volume[0] == 50 + 50 + 30 and flow.sell_volume[0] == 50 + 70
    assert np.isnan(flow.ofi[1]) and np.isnan(flow.buy_volume[1])  # BBB had no quotes or prints
    assert clock.dropped == {"trade_invalid": 1}
