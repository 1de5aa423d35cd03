"""The one place the engine gets its model from: ``model.kind`` picks the class."""

from __future__ import annotations

from algobotd.config import Config
from algobotd.models.base import Model
from algobotd.models.baseline import make_model


def build_model(cfg: Config, n_symbols: int) -> Model:
    if cfg.model.kind == "ensemble":
        from algobotd.models.ensemble import EnsembleModel  # torch/lightgbm only when asked for

        return EnsembleModel(cfg, n_symbols)
    return make_model(cfg.model, n_symbols)
