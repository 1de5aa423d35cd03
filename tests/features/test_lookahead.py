"""No look-ahead: changing bar t+1 (and everything after it) never changes any feature at t."""

from __future__ import annotations

import dataclasses

import numpy as np

from algobotd.domain import BarBatch, IntrabarFlow, News, OptionsSnapshot
from algobotd.features.reference import reference_features
from algobotd.features.synthetic import random_walk_batches
from tests.features.helpers import FULL_CFG, run_engine


def _perturb(b: BarBatch, seed: int) -> BarBatch:
    """A very different but valid bar: prices scaled, volumes, quotes, refs, flow and events changed."""
    g = np.random.default_rng(seed)
    k = g.uniform(0.5, 1.5, len(b))
    flow = None if b.flow is None else IntrabarFlow(*(np.asarray(a) * 3 + 1 for a in (
        b.flow.ofi, b.flow.bid_size, b.flow.ask_size, b.flow.buy_volume, b.flow.sell_volume)))
    return dataclasses.replace(
        b, open=b.open * k, high=b.high * k * 1.01, low=b.low * k * 0.99, close=b.close * k, volume=b.volume * 7 + 3,
        bid=b.bid * k * 0.99, ask=b.ask * k * 1.01, refs={n: v * 1.3 for n, v in b.refs.items()},
        news=[News(f"p{seed}", b.ts, (b.symbols[0],), "x", sentiment=-1.0)], flow=flow,
        options=[OptionsSnapshot(b.symbols[-1], b.ts, 900.0, 1.0, 0.9, 0.95, 0.5)])


def test_perturbing_the_future_never_changes_the_past() -> None:
    batches = random_walk_batches(200, 4, seed=13, late_symbol_at=60)
    _, base = run_engine(batches, FULL_CFG)
    _, base_ref = reference_features(batches, FULL_CFG)
    for t in (30, 59, 61, 120, 150):
        future = batches[: t + 1] + [_perturb(b, t + i) for i, b in enumerate(batches[t + 1:])]
        _, got = run_engine(future, FULL_CFG)
        _, ref = reference_features(future, FULL_CFG)
        assert np.array_equal(got[: t + 1], base[: t + 1], equal_nan=True)
        assert np.array_equal(ref[: t + 1], base_ref[: t + 1], equal_nan=True)
        # ... and the perturbation is visible from t+1 on (the test can fail)
        assert not np.array_equal(got[t + 1], base[t + 1], equal_nan=True)
        assert not np.array_equal(ref[t + 1], base_ref[t + 1], equal_nan=True)
