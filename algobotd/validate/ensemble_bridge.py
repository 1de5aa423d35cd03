"""The ML ensemble (``model.kind = "ensemble"``, algobotd/models/) inside validation runs.

- walk-forward: each fold trains a bundle on its own training bars only (``train_on``), and the
  fold's engine serves that bundle; per-base-model IC on the test window comes from the same
  learners (``base_model_ic``);
- Monte Carlo: the champion bundle is loaded once per worker process (``champion_bundle``)
  and every path gets a fresh ``EnsembleModel`` (its own feature state) around it.

A run never hot-swaps or trains in the background: the model gets a registry that never
changes (``FrozenRegistry``), so what is evaluated is exactly the bundle handed in.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from algobotd.config import Config, ConfigError
from algobotd.domain import BarBatch

if TYPE_CHECKING:
    from algobotd.engine import Engine
    from algobotd.models.train import Bundle


def is_ensemble(cfg: Config) -> bool:
    return cfg.model.kind == "ensemble"


def warmup_bars(cfg: Config) -> int:
    """History a run feeds before trading: the configured warm-up, or the feature engine's when longer."""
    if not is_ensemble(cfg):
        return cfg.feed.warmup_bars
    from algobotd.features.engine import FeatureEngine

    return max(cfg.feed.warmup_bars, int(FeatureEngine(cfg.features).warmup) + 1)


def engine_config(cfg: Config) -> Config:
    """What the Engine is built with: for an ensemble run a baseline placeholder, replaced by
    :func:`install` right after construction (the engine must not load or train on its own)."""
    if not is_ensemble(cfg):
        return cfg
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, kind="baseline", train_on_start=False))


def _frozen_registry() -> Any:
    from algobotd.models.registry import ModelRegistry

    class FrozenRegistry(ModelRegistry):
        def stamp(self) -> tuple[int, str | None]:
            return (0, None)  # never a new champion during a validation run

    return FrozenRegistry(Path("/nonexistent-validation-registry"))


def install(engine: Engine, cfg: Config, bundle: Bundle) -> None:
    """Serve ``bundle`` from this engine (a fresh EnsembleModel: per-run feature state)."""
    from algobotd.models.ensemble import EnsembleModel

    model = EnsembleModel(cfg, len(engine.symbols), registry=_frozen_registry(), bundle=bundle)
    if model.bundle is None:
        raise RuntimeError(f"bundle {bundle.model_id} could not be installed: {model.last_error}")
    engine.model = model
    engine.model_id = model.model_id


def require_champion(cfg: Config) -> None:
    """Refuse, before any work starts, a run that would serve an ensemble with no trained champion.

    Backtests and Monte Carlo never train on their own: a champion they trained would be promoted
    into ``<state>/models``, the registry a running daemon hot-swaps from.
    """
    if not is_ensemble(cfg):
        return
    from algobotd.models.registry import ModelRegistry

    reg = ModelRegistry.for_state(cfg.state.dir)
    if reg.champion() is None:
        raise ConfigError("model.kind", f'"ensemble" needs a trained champion under {reg.root}: run `algobotd train` '
                          'first, or pass --set model.kind="baseline"')


@lru_cache(maxsize=2)
def champion_bundle(state_dir: str) -> Bundle:
    """The registry's champion, loaded once per process (Monte Carlo workers)."""
    from algobotd.models.registry import ModelRegistry

    reg = ModelRegistry.for_state(state_dir)
    mid = reg.champion()
    if mid is None:
        raise RuntimeError(f"model.kind = \"ensemble\" but no champion under {reg.root}; run `algobotd train` first")
    return reg.load(mid)


def train_on(cfg: Config, bars: list[BarBatch], model_id: str) -> Bundle:
    """Train the ensemble on ``bars`` only (its labels end inside them: no look-ahead past the last bar)."""
    from algobotd.models.dataset import panel_from_batches
    from algobotd.models.train import spec_from, train

    panel = panel_from_batches(bars, cfg.features, cfg.model)
    return train(panel, spec_from(cfg.model), model_id)


def base_model_ic(cfg: Config, bundle: Bundle, bars: list[BarBatch], rows: np.ndarray, fwd: np.ndarray) -> dict[str, float]:
    """IC of every base model of ``bundle`` on ``rows`` of ``bars`` (features warm up on the rows before)."""
    from algobotd.models.dataset import panel_from_batches
    from algobotd.models.train import predict_learner
    from algobotd.validate.metrics import ic_summary

    panel = panel_from_batches(bars, cfg.features, cfg.model)
    pos = np.array([panel.symbols.index(s) for s in bars[0].symbols], dtype=np.int64)
    out: dict[str, float] = {}
    for name in bundle.names:
        P = np.full((len(rows), len(pos)), np.nan)
        for k, t in enumerate(rows.tolist()):
            ok = np.flatnonzero(panel.ready[t, pos])
            if ok.size:
                P[k, ok] = predict_learner(bundle.learners[name], panel, np.full(ok.size, t), pos[ok])
        out[name] = ic_summary(P, fwd[rows])["ic"]
    return out


def ensemble_scores(cfg: Config, bundle: Bundle, bars: list[BarBatch]) -> np.ndarray:
    """Scores of the live EnsembleModel serving ``bundle`` over ``bars`` (NaN where not ready)."""
    from algobotd.models.ensemble import EnsembleModel

    n = len(bars[0].symbols)
    model = EnsembleModel(cfg, n, registry=_frozen_registry(), bundle=bundle)
    rows = []
    for b in bars:
        p = model.update(b)
        rows.append(np.where(p.ready, p.score[:n], np.nan))
    model.close()
    return np.array(rows, dtype=float)
