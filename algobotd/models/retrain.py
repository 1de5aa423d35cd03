"""The ops monitor's ``Retrainer`` for the ensemble: challenger training in a spawned process.

``retrain`` trains a challenger on the model's recent history (saved, not promoted) and, in
the same worker, scores the current champion on the challenger's out-of-sample evaluation
window with the same labels. ``promote_if_better`` promotes only when the challenger's OOS
IC is higher; the running EnsembleModel then hot-swaps it between two batches. The champion
may have been trained on part of that window (in sample for it), which biases the
comparison toward keeping the champion: the safe direction.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from algobotd.config import Config
from algobotd.domain import BarBatch
from algobotd.ops.monitor import ModelCandidate

if TYPE_CHECKING:
    from algobotd.models.ensemble import EnsembleModel


def challenger_job(cfg: Config, batches: list[BarBatch], model_id: str, champion: str | None) -> dict[str, Any]:
    import torch

    from algobotd.labels import make_labels
    from algobotd.models.dataset import panel_from_batches, sample_index
    from algobotd.models.metrics import evaluate
    from algobotd.models.registry import ModelRegistry
    from algobotd.models.train import predict_learner, spec_from, train

    torch.set_num_threads(cfg.model.threads)
    panel = panel_from_batches(batches, cfg.features)
    spec = spec_from(cfg.model)
    bundle = train(panel, spec, model_id)
    reg = ModelRegistry.for_state(cfg.state.dir)
    reg.save(bundle)
    out: dict[str, Any] = {"ic": bundle.metrics["ensemble"]["ic"], "champion_ic": float("nan")}
    if champion is not None:
        old = reg.load(champion)
        lab = make_labels(panel.close, spec.label, spec.horizon, spec.vol_span, spec.cs_zscore, spec.pt_mult,
                          spec.sl_mult)
        y = np.where(panel.ready, lab.y, np.nan)
        t, i = sample_index(panel, y, np.arange(bundle.metrics["eval_from"], panel.shape[0]))
        P = np.stack([predict_learner(old.learners[m], panel, t, i) for m in old.names], axis=1)
        score = np.full(y.shape, np.nan)
        score[t, i] = old.meta.linear(old.meta.scaler(P), old.meta.beta)
        out["champion_ic"] = evaluate(score, np.where(np.isfinite(score), y, np.nan))["ic"]
    return out


class EnsembleRetrainer:
    def __init__(self, model: EnsembleModel) -> None:
        self.model = model
        self._pool: ProcessPoolExecutor | None = None

    async def retrain(self, reason: str) -> ModelCandidate:
        from algobotd.models.registry import new_model_id

        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"))
        mid = new_model_id()
        loop = asyncio.get_running_loop()
        res = await loop.run_in_executor(self._pool, challenger_job, self.model.cfg, list(self.model.recent),
                                         mid, self.model.registry.champion())
        self.model.record(mid, champion=False)  # saved, not promoted (yet): its row says so
        return ModelCandidate(mid, None, {"ic": res["ic"], "champion_ic": res["champion_ic"]})

    async def promote_if_better(self, candidate: ModelCandidate) -> bool:
        ic, old = candidate.metrics.get("ic", float("nan")), candidate.metrics.get("champion_ic", float("nan"))
        if not np.isfinite(ic) or (np.isfinite(old) and ic <= old):
            return False
        self.model.registry.promote(candidate.model_id)  # the model hot-swaps it between batches
        return True
