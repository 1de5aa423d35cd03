"""Multi-level stops on the arrays: levels, once-per-position soft stop, no double exits, trailing."""

from __future__ import annotations

import numpy as np

from algobotd.config import RiskConfig
from algobotd.risk.stops import StopBook


def a(*v: float) -> np.ndarray:
    return np.array(v, dtype=float)


def q(*v: int) -> np.ndarray:
    return np.array(v, dtype=np.int64)


def test_levels_for_long_and_short() -> None:
    soft, hard = StopBook(3, RiskConfig()).levels(q(100, -50, 0), a(100.0, 40.0, 0.0))
    assert soft[0] == 95.0 and hard[0] == 92.0
    assert soft[1] == 42.0 and hard[1] == 43.2
    assert np.isnan(soft[2]) and np.isnan(hard[2])


def test_path_soft_once_then_hard_once_then_halt() -> None:
    book = StopBook(1, RiskConfig())
    qty, avg = q(100), a(100.0)
    fired = []
    held = q(100)
    for px in (99, 95, 94, 95.5, 94):  # soft zone repeatedly: one reduction only
        r = book.check(qty, held, avg, a(px))
        fired += r.kind
        held = held + (r.signed_qty.sum() if r.index.size else 0)
    assert fired == ["stop:soft"] and held[0] == 50  # 50 of 100 sold (the order is still open)
    for px in (92, 91, 90):  # hard zone: one exit of what is still held, not repeated
        r = book.check(qty, held, avg, a(px))
        fired += r.kind
        if r.index.size:
            assert r.signed_qty.tolist() == [-50]
            held = held + r.signed_qty
    assert fired == ["stop:soft", "stop:hard"]
    assert book.check(qty, held, avg, a(86)).halt_index.size == 0
    r = book.check(qty, held, avg, a(85))
    assert r.halt_index.tolist() == [0] and r.halt_loss[0] >= 0.15 and r.index.size == 0


def test_rejected_exit_is_reissued_and_soft_rearms_for_a_new_position() -> None:
    book = StopBook(1, RiskConfig())
    r = book.check(q(100), q(100), a(100.0), a(91.0))
    assert r.kind == ["stop:hard"]
    r = book.check(q(100), q(100), a(100.0), a(91.0))  # the exit was rejected: held is back to 100
    assert r.kind == ["stop:hard"] and r.signed_qty.tolist() == [-100]
    book.check(q(100), q(100), a(100.0), a(94.0))
    book.check(q(0), q(0), a(0.0), a(94.0))  # flat
    r = book.check(q(-40), q(-40), a(50.0), a(52.6))  # a new short, 5.2% against it: soft again
    assert r.kind == ["stop:soft"] and r.signed_qty.tolist() == [20]


def test_trailing_stop_and_subset_check() -> None:
    book = StopBook(2, RiskConfig(trailing_stop_pct=0.03))
    qty, avg = q(10, 10), a(100.0, 100.0)
    for px in (101, 110, 108):
        assert book.check(qty, qty, avg, a(px, 100.0)).index.size == 0
    r = book.check(qty, qty, avg, a(106.6, 100.0))  # 3.1% below the best (110), still above entry
    assert r.kind == ["stop:trailing"] and r.index.tolist() == [0] and r.signed_qty.tolist() == [-10]
    # a single-symbol check (live price update) only looks at that symbol
    r = book.check(qty, qty, avg, a(np.nan, 90.0), idx=q(1))
    assert r.index.tolist() == [1] and r.kind == ["stop:hard"]
