"""Tabular base learners on ``X[n_samples, n_features]``: LightGBM, RandomForest, HistGradientBoosting,
and XGBoost / CatBoost when the ``boost`` extra is installed (otherwise listed as unavailable).

All of them accept NaN in ``X`` natively (features are NaN until their window fills).
Early stopping uses the caller's purged, time-ordered validation split, never a random one.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import numpy as np

TABULAR = ("lightgbm", "random_forest", "hist_gbm", "xgboost", "catboost")


@dataclass(frozen=True, slots=True)
class TreeParams:
    rounds: int = 100
    learning_rate: float = 0.1
    leaves: int = 15
    min_leaf: int = 50
    threads: int = 1
    seed: int = 0
    early_stop: bool = True  # False: always grow ``rounds`` trees (the latency bench's worst case)


def unavailable_reason(name: str) -> str | None:
    """None when the model can be built here, else why not (shown in status and `train`)."""
    mod = {"lightgbm": "lightgbm", "random_forest": "sklearn", "hist_gbm": "sklearn",
           "xgboost": "xgboost", "catboost": "catboost"}.get(name)
    if mod is None:
        return None
    if importlib.util.find_spec(mod) is None:
        extra = " (pip install 'algobot[boost]')" if name in ("xgboost", "catboost") else ""
        return f"{mod} is not installed{extra}"
    return None


class TabularLearner:
    sequence = False

    def __init__(self, name: str, p: TreeParams) -> None:
        if name not in TABULAR:
            raise ValueError(f"unknown tabular model {name!r}")
        why = unavailable_reason(name)
        if why is not None:
            raise RuntimeError(why)
        self.name = name
        self.p = p
        self.est: object | None = None
        self.cols = np.zeros(0, dtype=np.int64)

    def fit(self, X: np.ndarray, y: np.ndarray, Xv: np.ndarray | None = None, yv: np.ndarray | None = None) -> None:
        p = self.p
        has_val = p.early_stop and Xv is not None and len(Xv) > 0
        # columns that are constant or all-NaN in training carry nothing (and break binning)
        with np.errstate(invalid="ignore"):
            lo, hi = np.nanmin(np.where(np.isfinite(X), X, np.inf), axis=0), np.nanmax(np.where(np.isfinite(X), X, -np.inf), axis=0)
        self.cols = np.flatnonzero(hi > lo)
        X = X[:, self.cols]
        Xv = Xv[:, self.cols] if has_val else Xv
        if self.name == "lightgbm":
            import lightgbm as lgb

            est = lgb.LGBMRegressor(n_estimators=p.rounds, learning_rate=p.learning_rate, num_leaves=p.leaves,
                                    min_child_samples=p.min_leaf, subsample=0.8, subsample_freq=1,
                                    colsample_bytree=0.8, reg_lambda=1.0, n_jobs=p.threads, random_state=p.seed,
                                    verbose=-1)
            cb = [lgb.early_stopping(max(10, p.rounds // 10), verbose=False)] if has_val else None
            if has_val:
                est.fit(X, y, eval_X=(Xv,), eval_y=(yv,), callbacks=cb)
            else:
                est.fit(X, y)
        elif self.name == "random_forest":
            from sklearn.ensemble import RandomForestRegressor

            est = RandomForestRegressor(n_estimators=max(20, p.rounds // 3), max_depth=8, min_samples_leaf=p.min_leaf,
                                        max_features=0.3, max_samples=min(1.0, 50_000 / max(len(X), 1)),
                                        n_jobs=p.threads, random_state=p.seed)
            est.fit(X, y)
        elif self.name == "hist_gbm":
            from sklearn.ensemble import HistGradientBoostingRegressor

            est = HistGradientBoostingRegressor(max_iter=p.rounds, learning_rate=p.learning_rate,
                                                max_leaf_nodes=p.leaves, min_samples_leaf=p.min_leaf,
                                                l2_regularization=1.0, early_stopping=False, random_state=p.seed)
            est.fit(X, y)
            if has_val:  # early stopping on the purged split (its own would draw a random one): keep the best prefix
                mse = [float(np.mean((pv - yv) ** 2)) for pv in est.staged_predict(Xv)]
                est._predictors = est._predictors[: int(np.argmin(mse)) + 1]  # predict cost ~ number of trees
        elif self.name == "xgboost":
            import xgboost as xgb

            est = xgb.XGBRegressor(n_estimators=p.rounds, learning_rate=p.learning_rate, max_leaves=p.leaves,
                                   tree_method="hist", min_child_weight=p.min_leaf, subsample=0.8,
                                   colsample_bytree=0.8, n_jobs=p.threads, random_state=p.seed,
                                   early_stopping_rounds=max(10, p.rounds // 10) if has_val else None)
            est.fit(X, y, eval_set=[(Xv, yv)] if has_val else None, verbose=False)
        else:
            import catboost as cb_

            est = cb_.CatBoostRegressor(iterations=p.rounds, learning_rate=p.learning_rate, depth=4,
                                        thread_count=p.threads, random_seed=p.seed, verbose=False,
                                        od_type="Iter" if has_val else None, od_wait=max(10, p.rounds // 10))
            est.fit(X, y, eval_set=(Xv, yv) if has_val else None)
        self.est = est

    @property
    def n_trees(self) -> int:
        """Trees evaluated per prediction: what inference time scales with."""
        est: Any = self.est
        if self.name == "lightgbm":
            return int(est.booster_.num_trees())
        if self.name == "random_forest":
            return len(est.estimators_)
        if self.name == "hist_gbm":
            return len(est._predictors)
        return -1

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.est is None:
            raise RuntimeError(f"{self.name} is not fitted")
        if self.name == "random_forest":
            # the trees' own routine (NaN routing included) without sklearn's per-call joblib and
            # validation overhead: same numbers (tested), ~3x faster on one batch of symbols
            X32 = np.ascontiguousarray(X[:, self.cols], dtype=np.float32)
            trees = self.est.estimators_  # type: ignore[attr-defined]
            return np.mean([t.tree_.predict(X32)[:, 0] for t in trees], axis=0).astype(np.float64)
        if self.name == "lightgbm":
            # the booster itself: the sklearn wrapper re-validates its params on every call (~1 ms a batch)
            return np.asarray(self.est.booster_.predict(X[:, self.cols], num_threads=1),  # type: ignore[attr-defined]
                              dtype=np.float64)
        if self.name == "hist_gbm":
            # one thread: on 500 rows sklearn's default OpenMP team costs more than it saves (2.9 -> ~2.5 ms
            # at 100 trees alone, far more when the event loop's other thread holds the second core);
            # the same numbers as ``predict`` (tested)
            return np.asarray(self.est._raw_predict(X[:, self.cols], n_threads=1)[:, 0],  # type: ignore[attr-defined]
                              dtype=np.float64)
        return np.asarray(self.est.predict(X[:, self.cols]), dtype=np.float64)  # type: ignore[attr-defined]
