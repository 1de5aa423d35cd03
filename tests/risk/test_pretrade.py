"""Pre-trade checks one by one: each reason code, the token buckets, and sequential caps in one call."""

from __future__ import annotations

import numpy as np
import pytest

from algobotd.config import RiskConfig
from algobotd.domain import NS_PER_SECOND, OrderRequest, OrderType, Side, TimeInForce, TradingState
from algobotd.risk.pretrade import NEVER, Book, PreTrade, TokenBucket
from algobotd.symbols import SymbolIndex

NOW = 1_000_000 * NS_PER_SECOND
SYMS = SymbolIndex(("AAA", "BBB", "CCC"))
_ids = iter(range(1, 1_000_000))


def order(symbol: str, signed: int, type_: OrderType = OrderType.MARKET, limit: float | None = None,
          reason: str = "signal", cid: str | None = None, qty: object = None) -> OrderRequest:
    return OrderRequest(cid or f"ab-{next(_ids):08d}-{symbol}", symbol, Side.BUY if signed > 0 else Side.SELL,
                        abs(signed) if qty is None else qty, type_, limit, TimeInForce.DAY, reason, NOW)


def book(position=(0, 0, 0), pending=(0, 0, 0), price=(100.0, 50.0, 20.0), quote_age=0.0,
         state=TradingState.ACTIVE, equity=1_000_000.0, quoted=True) -> Book:
    qts = np.full(3, NOW - int(quote_age * NS_PER_SECOND), dtype=np.int64)
    return Book(NOW, state, np.array(position, dtype=np.int64), np.array(pending, dtype=np.int64),
                np.array(price, dtype=float), qts if quoted else np.full(3, NEVER, dtype=np.int64), qts, equity)


def codes(cfg: RiskConfig, orders: list[OrderRequest], b: Book) -> list[str | None]:
    approved, denied = PreTrade(cfg, SYMS).check(orders, b)
    by_id = {d.client_order_id: d.code.value for d in denied}
    ok = {o.client_order_id for o in approved}
    assert ok.isdisjoint(by_id) and len(ok) + len(by_id) == len(orders)
    return [by_id.get(o.client_order_id) for o in orders]


@pytest.mark.parametrize("o, b, cfg, code", [
    (order("AAA", 0, qty=0), book(), RiskConfig(), "bad_qty"),
    (order("AAA", 1, qty=1.5), book(), RiskConfig(), "bad_qty"),
    (order("AAA", 1, qty=True), book(), RiskConfig(), "bad_qty"),
    (order("AAA", 1, qty=np.int64(10)), book(), RiskConfig(), None),  # any Integral but bool
    (order("AAA", 1, qty=np.int64(0)), book(), RiskConfig(), "bad_qty"),
    (order("ZZZ", 10), book(), RiskConfig(), "unknown_symbol"),
    (order("BBB", 10), book(), RiskConfig(restricted_symbols=["BBB"]), "not_tradable"),
    (order("AAA", -10), book(), RiskConfig(), "short_not_allowed"),
    (order("AAA", 10), book(price=(np.nan, 50, 20)), RiskConfig(), "no_price"),
    (order("AAA", 2600), book(), RiskConfig(max_position_pct=1.0), "max_order_value"),  # 260,000 > 250,000
    (order("AAA", 1001), book(), RiskConfig(), "max_position"),  # 100,100 > 10% of 1,000,000
    (order("AAA", 600), book(position=(500, 0, 0)), RiskConfig(), "max_position"),  # held counts
    (order("AAA", 400), book(pending=(700, 0, 0)), RiskConfig(), "max_position"),  # open orders count
    (order("CCC", 4000), book(position=(900, 18000, 0)), RiskConfig(), "max_gross"),  # 90k + 900k + 80k
    (order("AAA", 10, OrderType.LIMIT, 106.0), book(), RiskConfig(), "price_band"),
    (order("AAA", 10, OrderType.LIMIT, 95.5), book(), RiskConfig(), None),
    (order("AAA", 10), book(quote_age=121), RiskConfig(), "stale_quote"),
    (order("AAA", 10), book(quote_age=119), RiskConfig(), None),
    (order("AAA", 10), book(state=TradingState.HALTED), RiskConfig(), "state_halted"),
    (order("AAA", -10, reason="flatten by op"), book(position=(5, 0, 0), state=TradingState.HALTED), RiskConfig(),
     "state_halted"),  # would flip
    (order("AAA", -5, reason="flatten by op"), book(position=(5, 0, 0), state=TradingState.HALTED), RiskConfig(), None),
    (order("AAA", -5, reason="signal"), book(position=(5, 0, 0), state=TradingState.HALTED), RiskConfig(),
     "state_halted"),  # reducing, but not a flatten
    (order("AAA", 5), book(position=(5, 0, 0), state=TradingState.REDUCING), RiskConfig(), "state_reducing"),
    (order("AAA", -5), book(position=(5, 0, 0), pending=(-3, 0, 0), state=TradingState.REDUCING), RiskConfig(),
     "state_reducing"),  # with the open sell it would flip
    (order("AAA", -2), book(position=(5, 0, 0), pending=(-3, 0, 0), state=TradingState.REDUCING), RiskConfig(), None),
])
def test_each_check(o, b, cfg, code) -> None:
    assert codes(cfg, [o], b) == [code]


def test_duplicate_id_and_margin_accounts_get_the_same_caps() -> None:
    p = PreTrade(RiskConfig(), SYMS)
    first = order("AAA", 10, cid="ab-00000001-AAA")
    assert p.check([first], book())[1] == []
    assert [d.code.value for d in p.check([first], book())[1]] == ["duplicate_id"]
    # equity far below the notional (a margin account): the caps are on equity, never skipped
    assert codes(RiskConfig(), [order("AAA", 200)], book(equity=100_000.0)) == ["max_position"]


def test_bar_only_source_uses_the_last_print() -> None:
    assert codes(RiskConfig(), [order("AAA", 10)], book(quoted=False, quote_age=30)) == [None]
    assert codes(RiskConfig(), [order("AAA", 10)], book(quoted=False, quote_age=300)) == ["stale_quote"]


def test_caps_apply_across_orders_of_one_call() -> None:
    # two buys of 600 AAA: the first fits (60,000), the second would make 120,000 > 100,000
    assert codes(RiskConfig(), [order("AAA", 600), order("AAA", 600)], book()) == [None, "max_position"]


def test_rate_limits_token_buckets_but_never_block_exits() -> None:
    cfg = RiskConfig(orders_per_second=3.0, orders_per_minute=5.0)
    p = PreTrade(cfg, SYMS)
    buys = [order("CCC", 1) for _ in range(4)]
    approved, denied = p.check(buys, book())
    assert len(approved) == 3 and [d.code.value for d in denied] == ["rate_limit"]
    later = Book(NOW + 2 * NS_PER_SECOND, TradingState.ACTIVE, np.array([0, 0, 3]), np.zeros(3, dtype=np.int64),
                 np.array([100.0, 50.0, 20.0]), np.full(3, NOW), np.full(3, NOW), 1_000_000.0)
    approved, denied = p.check([order("CCC", 1) for _ in range(3)], later)  # the per-minute bucket is nearly dry
    assert len(approved) == 2 and [d.code.value for d in denied] == ["rate_limit"]
    exits = [order("CCC", -1) for _ in range(3)]
    approved, denied = p.check(exits, Book(later.now, later.state, np.array([0, 0, 5]), later.pending,
                                           later.last_price, later.quote_ts, later.trade_ts, later.equity))
    assert len(approved) == 3 and denied == []  # reduce-only: not rate limited


def test_exits_use_free_tokens_but_never_overdraw() -> None:
    # two tokens, three exits: all go out, the third takes nothing (the bucket stays at 0, not
    # below), and an entry right after them waits for the refill
    p = PreTrade(RiskConfig(orders_per_second=2.0, orders_per_minute=100.0), SYMS)
    exits = [order("CCC", -1) for _ in range(3)]
    approved, denied = p.check([*exits, order("AAA", 1)], book(position=(0, 0, 5)))
    assert approved == exits and [d.code.value for d in denied] == ["rate_limit"]
    assert p.per_second.tokens == 0.0
    b = TokenBucket(2.0, 2.0)
    for _ in range(3):
        b.take_if_any(NOW)
    assert b.tokens == 0.0 and b.available(NOW + NS_PER_SECOND // 2)


def test_token_bucket_refills_with_the_clock() -> None:
    b = TokenBucket(2.0, 2.0)
    b.take(NOW)
    b.take(NOW)
    assert not b.available(NOW)
    assert b.available(NOW + NS_PER_SECOND // 2)
    assert b.tokens == pytest.approx(1.0)
