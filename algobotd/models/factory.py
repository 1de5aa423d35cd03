"""The one place the engine gets its model from: ``model.kind`` picks the class."""

from __future__ import annotations

from algobotd.config import Config
from algobotd.models.base import Model
from algobotd.models.baseline import make_model
from algobotd.store.writer import StoreWriter


def build_model(cfg: Config, n_symbols: int, store: StoreWriter | None = None) -> Model:
    """``store``: the daemon's writer, where the ensemble records the models it trains and installs."""
    if cfg.model.kind == "ensemble":
        # torch/lightgbm only when asked for
        from algobotd.models.ensemble import EnsembleModel

        return EnsembleModel(cfg, n_symbols, store=store)
    return make_model(cfg.model, n_symbols)
