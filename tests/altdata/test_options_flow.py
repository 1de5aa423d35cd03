"""Options-flow summary of a chain: ratios, skew (greeks and strike fallback), dealer gamma, unusual flags."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from algobotd.altdata.options_flow import Contract, FlowState, parse_occ, summarize

NS = 1_000_000_000
TS = int(dt.datetime(2024, 5, 1, 15, 0, tzinfo=dt.UTC).timestamp()) * NS
EXP = dt.date(2024, 5, 17)


def c(right: str, strike: float, vol: float, oi: float = 1000.0, iv: float = 0.25, delta: float = math.nan,
      gamma: float = math.nan, exp: dt.date = EXP) -> Contract:
    return Contract(f"X{right}{strike}", right, strike, exp, vol, oi, iv, delta, gamma)


def test_parse_occ() -> None:
    assert parse_occ("AAPL240517C00190000") == ("AAPL", EXP, "C", 190.0)
    assert parse_occ("SPY   240517P00512500") == ("SPY", EXP, "P", 512.5)
    assert parse_occ("AAPL") is None and parse_occ("AAPL241345C00190000") is None


def test_ratios_and_skew_from_greeks() -> None:
    chain = [c("C", 100, 400, 2000, 0.24, 0.5, 0.05), c("P", 100, 200, 1000, 0.26, -0.5, 0.05),
             c("C", 105, 100, 500, 0.22, 0.27, 0.03), c("P", 95, 300, 800, 0.31, -0.24, 0.03)]
    snap, m = summarize("X", TS, 100.0, chain, FlowState())
    assert (snap.call_volume, snap.put_volume) == (500, 500)
    assert m["pcr_volume"] == pytest.approx(1.0) and m["pcr_oi"] == pytest.approx(1800 / 2500)
    assert snap.atm_iv == pytest.approx(0.25) and snap.put_iv_25d == 0.31 and snap.call_iv_25d == 0.22
    assert m["iv_skew"] == pytest.approx(0.09)
    # dealers long call gamma, short put gamma: (0.05*2000 + 0.03*500 - 0.05*1000 - 0.03*800) * 100 * 100^2 * 1%
    assert m["gamma_exposure"] == pytest.approx((100 + 15 - 50 - 24) * 100 * 100.0)
    # the event the feature engine consumes carries the same open interest, gamma and flag
    assert (snap.call_oi, snap.put_oi) == (2500, 1800) and snap.gamma_exposure == m["gamma_exposure"]
    assert snap.unusual == 0.0


def test_skew_without_greeks_uses_strikes_near_5pct_otm() -> None:
    chain = [c("C", k, 10, iv=0.2 + 0.001 * k) for k in (90, 95, 100, 105, 110)] + \
            [c("P", k, 10, iv=0.4 - 0.001 * k) for k in (90, 95, 100, 105, 110)]
    snap, m = summarize("X", TS, 100.0, chain, FlowState())
    assert snap.put_iv_25d == pytest.approx(0.4 - 0.095) and snap.call_iv_25d == pytest.approx(0.2 + 0.105)
    assert math.isnan(m["gamma_exposure"])  # no greeks: no gamma estimate, not a zero


def test_volumes_are_per_poll_and_reset_each_day() -> None:
    st = FlowState()
    summarize("X", TS, 100.0, [c("C", 100, 300), c("P", 100, 100)], st)
    snap2, _ = summarize("X", TS + 60 * NS, 100.0, [c("C", 100, 350), c("P", 100, 180)], st)
    assert (snap2.call_volume, snap2.put_volume) == (50, 80)
    snap3, _ = summarize("X", TS + 86_400 * NS, 100.0, [c("C", 100, 20), c("P", 100, 10)], st)
    assert (snap3.call_volume, snap3.put_volume) == (20, 10)  # a new session starts from zero


def test_unusual_activity_flags() -> None:
    st = FlowState()
    _, m = summarize("X", TS, 100.0, [c("C", 100, 5000, oi=1000), c("P", 100, 10)], st)
    assert m["unusual"] == 1.0 and m["unusual_contracts"] == 1  # volume 5x open interest
    st = FlowState()
    cum = 0.0
    for k in range(8):  # a steady baseline of ~100 contracts per poll ...
        cum += 100
        _, m = summarize("X", TS + k * 60 * NS, 100.0, [c("C", 100, cum, oi=1e6), c("P", 100, 0, oi=1e6)], st)
        assert m["unusual"] == 0.0
    cum += 1000  # ... then 10x in one poll
    _, m = summarize("X", TS + 9 * 60 * NS, 100.0, [c("C", 100, cum, oi=1e6), c("P", 100, 0, oi=1e6)], st)
    assert m["unusual"] == 1.0 and m["unusual_contracts"] == 0


def test_unusable_chain() -> None:
    assert summarize("X", TS, math.nan, [c("C", 100, 1)], FlowState()) is None
    assert summarize("X", TS, 100.0, [], FlowState()) is None
