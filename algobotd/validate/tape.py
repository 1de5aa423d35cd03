"""The momentum model of a whole path computed in one go, served bar by bar to the engine.

A Monte Carlo path's bars are all generated before its run starts, and the baseline momentum
score of bar t depends on bars <= t only, so the engine's model can be replaced by a *tape*:
:func:`algobotd.models.baseline.momentum_tape` computes every bar's prediction with whole-matrix
numpy (bit for bit what ``MomentumModel.update`` returns bar by bar), and :class:`ScoreTape`
hands row t to the engine when it processes bar t. Everything after the model -- sizing, stops,
breakers, pre-trade, fills -- still runs per bar on the live engine.

The tape refuses a batch whose timestamp is not the next one it holds: it can only ever serve
the bars it was computed from, in order (no look-ahead by construction: row t was computed
from rows <= t, and it is handed out only when bar t is processed).
"""

from __future__ import annotations

import numpy as np

from algobotd.domain import BarBatch
from algobotd.models.base import Prediction
from algobotd.models.baseline import MomentumModel, momentum_tape


class ScoreTape:
    """Model stand-in: the same ``model_id``, ``warmup``, ``entry`` and ``exit`` as the model it replays."""

    def __init__(self, model: MomentumModel, ts: np.ndarray, close: np.ndarray) -> None:
        self.model_id = model.model_id
        self.warmup = model.warmup
        self.entry = model.entry
        self.exit = model.exit
        self.weights = model.weights
        self.ts = np.asarray(ts, dtype=np.int64)
        self.score, self.confidence, self.ready = momentum_tape(model.cfg, close)
        self.next = 0

    def update(self, batch: BarBatch) -> Prediction:
        t = self.next
        if t >= len(self.ts) or batch.ts != self.ts[t]:
            expected = int(self.ts[t]) if t < len(self.ts) else "nothing (tape exhausted)"
            raise RuntimeError(f"score tape: got the bar at {batch.ts}, expected {expected}")
        self.next = t + 1
        return Prediction(self.score[t], self.confidence[t], self.ready[t], self.weights)


def tape_for(model: object, batches: list[BarBatch]) -> ScoreTape | None:
    """A tape replacing ``model`` over ``batches``, or None when the model or the bars do not allow
    one (another model kind, or a symbol missing or non-positive in some bar: use ``update``)."""
    if type(model) is not MomentumModel or not batches:
        return None
    if not all(b.valid.all() for b in batches):
        return None
    close = np.array([b.close for b in batches], dtype=float)
    if not (close > 0).all():
        return None
    return ScoreTape(model, np.array([b.ts for b in batches], dtype=np.int64), close)
