"""The score tape: the momentum model computed for a whole path at once equals the model run
bar by bar, bit for bit, and a path run on the tape equals the same path run without it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from algobotd.config import load
from algobotd.models.baseline import MomentumModel, make_model, momentum_tape
from algobotd.validate.paths import path_config, run_chunk
from algobotd.validate.scenarios import generate
from algobotd.validate.tape import ScoreTape, tape_for


def _rows(paths: list) -> list[tuple]:
    return [tuple(np.asarray(v).tobytes() if isinstance(v, np.ndarray) else v
                  for v in dataclasses.astuple(p)) for p in paths]


@pytest.mark.parametrize("scenario", ["bull", "crash", "jump", "bootstrap"])
def test_momentum_tape_is_bit_identical_to_the_streaming_model(scenario: str) -> None:
    cfg = load().model
    market = generate(scenario, 5, 3, 7, 150, 80)
    score, confidence, ready = momentum_tape(cfg, market.close)
    model = MomentumModel(cfg, 7)
    for t, batch in enumerate(market.batches()):
        p = model.update(batch)
        assert np.array_equal(p.ready, ready[t]), t
        assert np.array_equal(p.score, score[t], equal_nan=True), t
        assert np.array_equal(p.confidence, confidence[t]), t
    assert ready[-1].all() and not ready[cfg.vol_window - 1].any()  # warms up exactly like the model


def test_tape_is_causal() -> None:
    # changing the last bars never changes an earlier row
    cfg = load().model
    close = generate("bull", 1, 0, 4, 120, 0).close
    bumped = close.copy()
    bumped[100:] *= 1.3
    a, b = momentum_tape(cfg, close)[0], momentum_tape(cfg, bumped)[0]
    assert np.array_equal(a[:100], b[:100], equal_nan=True)
    assert not np.array_equal(a[100:], b[100:], equal_nan=True)


def test_tape_serves_only_its_own_bars_in_order() -> None:
    cfg = load()
    batches = generate("sideways", 2, 0, 3, 20, 70).batches()
    tape = tape_for(make_model(cfg.model, 3), batches)
    assert isinstance(tape, ScoreTape) and tape.model_id == MomentumModel(cfg.model, 3).model_id
    tape.update(batches[0])
    with pytest.raises(RuntimeError, match="expected"):
        tape.update(batches[2])  # a skipped bar
    for b in batches[1:]:
        tape.update(b)
    with pytest.raises(RuntimeError, match="exhausted"):
        tape.update(batches[-1])
    with pytest.raises(ValueError, match="positive closes"):
        momentum_tape(cfg.model, np.where(np.eye(3, dtype=bool), np.nan, 10.0))


def test_no_tape_when_a_symbol_is_missing_or_for_another_model() -> None:
    cfg = load()
    batches = generate("bull", 2, 0, 3, 20, 70).batches()
    gap = dataclasses.replace(batches[5], valid=np.array([True, False, True]))
    assert tape_for(make_model(cfg.model, 3), [*batches[:5], gap, *batches[6:]]) is None
    sma = load(None, ['model.kind="sma_cross"']).model
    assert tape_for(make_model(sma, 3), batches) is None


def test_paths_on_the_tape_equal_paths_run_bar_by_bar(tmp_path) -> None:
    # tight limits so stops, breaker trips and halts happen too
    for overrides in ([], ["risk.max_drawdown_pct=0.002", "risk.daily_loss_pct=0.002"]):
        cfg = path_config(load(None, overrides, str(tmp_path / "state")))
        tasks = [("crash", 0), ("bull", 1), ("bootstrap", 2), ("jump", 3)]
        fast = run_chunk(cfg, tasks, 9, 8, 120, 2, tape=True)
        slow = run_chunk(cfg, tasks, 9, 8, 120, 2, tape=False)
        assert _rows(fast) == _rows(slow)
        assert sum(p.trades for p in fast) > 0
    assert sum(p.breaker_trips for p in fast) > 0
