"""``algobotd features``, the intrabar flow helpers, and the simulator's synthetic flow/options."""

from __future__ import annotations

import json

import numpy as np
import pytest

from algobotd.__main__ import main
from algobotd.config import FeedConfig, SimConfig
from algobotd.domain import Quote, Trade
from algobotd.features.engine import FeatureEngine, full_registry
from algobotd.features.intrabar import ofi_from_quotes, tick_rule_from_trades
from algobotd.feeds.sim import SimFeed


def test_features_cli_json_lists_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(full_registry().names)
    assert all({"name", "family", "window", "inputs"} <= set(r) for r in rows)
    assert main(["features", "--set", 'features.disabled_families=["alternative"]']) == 0
    text = capsys.readouterr().out
    assert "price_volume (" in text and "alternative" not in text and "[bar proxy]" in text
    assert main(["features", "--set", 'features.disabled=["bogus"]']) == 78


def test_ofi_and_tick_rule_on_hand_computed_examples() -> None:
    q = [Quote("A", 0, 10.00, 10.02, 100, 200),
         Quote("A", 1, 10.01, 10.02, 50, 150),  # bid up: +50; ask same: -150 + 200
         Quote("A", 2, 10.01, 10.01, 80, 70)]  # bid same: +80 - 50; ask down: -70
    assert ofi_from_quotes(q) == (50 - 150 + 200) + (80 - 50 - 70)
    trades = [Trade("A", 0, 10.0, 100), Trade("A", 1, 10.1, 50), Trade("A", 2, 10.1, 30), Trade("A", 3, 10.0, 20)]
    # vs reference 10.0: zero tick (unknown: split), up, zero (keeps up), down
    assert tick_rule_from_trades(trades, 10.0) == (50 + 50 + 30, 50 + 20)


async def test_sim_emits_flow_and_options_without_changing_its_bars() -> None:
    def feed(flow: bool) -> SimFeed:
        return SimFeed(FeedConfig(symbols=[], sim=SimConfig(symbols=6, seed=3, speed="max", flow=flow)), max_bars=120)

    with_flow = [b async for b in feed(True).batches()]
    without = [b async for b in feed(False).batches()]
    for a, b in zip(with_flow, without, strict=True):
        assert np.array_equal(a.close, b.close) and np.array_equal(a.volume, b.volume) and a.refs == b.refs
        assert b.flow is None and b.options == []
        assert a.flow is not None and np.isfinite(a.flow.ofi).all()
        assert np.allclose(a.flow.buy_volume + a.flow.sell_volume, a.volume)
    snaps = [s for b in with_flow for s in b.options]
    assert len(snaps) == 6 * 120 // 30  # every symbol every 30 bars
    assert all(s.put_iv_25d > s.call_iv_25d > 0 for s in snaps)
    again = [b async for b in feed(True).batches()]
    assert all(np.array_equal(a.flow.ofi, b.flow.ofi) for a, b in zip(with_flow, again))  # deterministic
    eng = FeatureEngine()
    for b in with_flow:
        X = eng.update(b)
    for name in ("ofi_depth", "trade_imb", "depth_imb", "opt_pcr", "opt_iv_skew", "vix_level"):
        assert np.isfinite(X[:, eng.names.index(name)]).all(), name


def test_sim_flow_of_a_bar_does_not_depend_on_where_the_run_starts() -> None:
    feed = SimFeed(FeedConfig(symbols=[], sim=SimConfig(symbols=5, seed=9, speed="max")))
    whole = feed._make_batches(0, 0, 200, feed.start_levels)  # noqa: SLF001
    resumed = feed._make_batches(0, 70, 200, feed.start_levels)  # noqa: SLF001 (starts inside a chunk)
    for a, b in zip(whole[70:], resumed, strict=True):
        assert np.array_equal(a.flow.ofi, b.flow.ofi) and np.array_equal(a.flow.buy_volume, b.flow.buy_volume)
        assert a.options == b.options
