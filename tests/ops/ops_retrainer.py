"""A small real :class:`~algobotd.ops.monitor.Retrainer`: the momentum baseline, refit by grid search.

``retrain`` picks the best candidate config on the training part of a price history in a
separate process and reports its out-of-sample IC on the recent part; ``promote_if_better``
scores the champion on the same recent part and swaps only if the challenger is better.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
from dataclasses import replace

import numpy as np

from algobotd.config import ModelConfig
from algobotd.domain import BarBatch
from algobotd.models.baseline import MomentumModel
from algobotd.ops.monitor import ModelCandidate, spearman


def trending_market(n_bars: int, n_symbols: int, phi: float = 0.4, seed: int = 3) -> np.ndarray:
    """Closes whose returns are AR(1) with ``phi`` > 0: short-horizon momentum has real skill."""
    rng = np.random.default_rng(seed)
    r = np.zeros((n_bars, n_symbols))
    eps = rng.normal(0, 0.01, (n_bars, n_symbols))
    for t in range(1, n_bars):
        r[t] = phi * r[t - 1] + eps[t]
    return 100 * np.exp(np.cumsum(r, axis=0))


def out_of_sample_ic(closes: np.ndarray, cfg: ModelConfig, start: int, end: int) -> float:
    """Run the real model bar by bar; IC of its score vs the next bar's return on bars [start, end)."""
    n_bars, n = closes.shape
    model = MomentumModel(cfg, n)
    syms = tuple(f"S{i}" for i in range(n))
    preds, actual = [], []
    nan = np.full(n, np.nan)
    for t in range(end - 1):
        c = closes[t]
        p = model.update(BarBatch(t, syms, c, c, c, c, np.ones(n), np.ones(n, bool), nan, nan))
        if t >= start and p.ready.all():
            preds.append(p.score)
            actual.append(np.log(closes[t + 1] / c))
    return spearman(np.concatenate(preds), np.concatenate(actual)) if preds else float("nan")


def fit(closes: np.ndarray, candidates: list[ModelConfig], split: int) -> tuple[ModelConfig, float, float]:
    """Best candidate in sample; returns (config, in-sample IC, out-of-sample IC)."""
    scored = [(out_of_sample_ic(closes, c, 0, split), c) for c in candidates]
    best_ic, best = max(scored, key=lambda s: s[0])
    return best, best_ic, out_of_sample_ic(closes, best, split, len(closes))


class BaselineRetrainer:
    def __init__(self, closes: np.ndarray, champion: ModelConfig, candidates: list[ModelConfig]) -> None:
        self.closes = closes
        self.champion = champion
        self.candidates = candidates
        self.split = int(len(closes) * 0.7)
        self.retrains = 0
        self.promotions: list[str] = []
        self.pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))

    async def retrain(self, reason: str) -> ModelCandidate:
        self.retrains += 1
        loop = asyncio.get_running_loop()
        cfg, ins, oos = await loop.run_in_executor(self.pool, fit, self.closes, self.candidates, self.split)
        return ModelCandidate(f"momentum-L{cfg.lookback}", cfg, {"in_sample_ic": ins, "oos_ic": oos})

    async def promote_if_better(self, candidate: ModelCandidate) -> bool:
        loop = asyncio.get_running_loop()
        champion_ic = await loop.run_in_executor(self.pool, out_of_sample_ic, self.closes, self.champion,
                                                 self.split, len(self.closes))
        candidate.metrics["champion_oos_ic"] = champion_ic
        if candidate.metrics["oos_ic"] > champion_ic:
            self.champion = candidate.model
            self.promotions.append(candidate.model_id)
            return True
        return False

    def close(self) -> None:
        self.pool.shutdown()


def configs(*lookbacks: int) -> list[ModelConfig]:
    return [replace(ModelConfig(), lookback=lb, vol_window=20) for lb in lookbacks]
