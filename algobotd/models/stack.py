"""Stacking meta-learner, adaptive weights from recent IC, and the confidence of a prediction.

Base predictions are put on one scale (``(p - mean) / std`` from their out-of-fold values),
giving ``Z[..., M]``. The meta-learner is a ridge regression of the label on ``Z`` plus two
context features (the models' sign agreement and their dispersion), fitted on out-of-fold
predictions only (or, ``meta = "lightgbm"``, a small LightGBM on the same columns, whose linear
projection gives its per-model weights). The meta-learner is a weight per model; the adaptive part
re-weights models by their exponentially weighted recent IC, and the final linear weight is
``W = (1 - mix) * beta + mix * scale * w_adaptive``. ``W`` (normalised) is what predictions
rows and the status snapshot show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import Ridge


def context(Z: np.ndarray) -> np.ndarray:
    """[..., 2]: mean sign of the models (agreement, in [-1, 1]) and their dispersion."""
    return np.stack([np.sign(Z).mean(axis=-1), Z.std(axis=-1)], axis=-1)


@dataclass
class Scaler:
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, P: np.ndarray) -> Scaler:
        m = np.nanmean(P, axis=0)
        s = np.nanstd(P, axis=0)
        return cls(np.nan_to_num(m), np.where(s > 1e-12, s, 1.0))

    def __call__(self, P: np.ndarray) -> np.ndarray:
        return np.nan_to_num((P - self.mean) / self.std)


@dataclass
class Meta:
    names: tuple[str, ...]
    scaler: Scaler
    beta: np.ndarray  # per model (on Z)
    gamma: np.ndarray  # per context feature
    intercept: float
    out_std: float  # std of the OOF meta prediction: the unit of the final score
    #: kind "lightgbm": a small booster on [Z, context]; beta/gamma/intercept are then its
    #: least-squares linear projection (the weights shown and mixed with the adaptive ones)
    booster: Any = None

    @classmethod
    def fit(cls, names: tuple[str, ...], P: np.ndarray, y: np.ndarray, alpha: float = 10.0,
            kind: str = "ridge", seed: int = 0) -> Meta:
        scaler = Scaler.fit(P)
        Z = scaler(P)
        A = np.hstack([Z, context(Z)])
        m = len(names)
        booster = None
        target = y
        if kind == "lightgbm":
            import lightgbm as lgb

            # small and shallow: a few thousand OOF rows of a handful of columns, mostly noise
            booster = lgb.LGBMRegressor(n_estimators=60, learning_rate=0.05, num_leaves=4,
                                        min_child_samples=max(50, len(y) // 50), subsample=0.8, subsample_freq=1,
                                        reg_lambda=10.0, n_jobs=1, random_state=seed, verbose=-1).fit(A, y)
            target = booster.predict(A)
        elif kind != "ridge":
            raise ValueError(f"unknown meta-learner {kind!r} (ridge | lightgbm)")
        # non-negative weights (stacked regressions, Breiman 1996): the base models are strongly
        # collinear and free weights flip sign between folds; on the real data set (arch, purged
        # walk-forward) this took the ensemble's OOS IC from .028 to .052 -- a choice made on that
        # same evaluation, so read it as one degree of freedom spent, not as new evidence
        r = Ridge(alpha=alpha, positive=True).fit(A, target)
        meta = cls(names, scaler, r.coef_[:m].copy(), r.coef_[m:].copy(), float(r.intercept_), 1.0, booster)
        sd = float(meta.linear(Z, meta.beta).std())
        meta.out_std = sd if sd > 1e-12 else 1.0
        return meta

    def linear(self, Z: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The stacked score with per-model weights ``w`` (``beta`` = the meta-learner's own)."""
        out = Z @ w + context(Z) @ self.gamma + self.intercept
        booster = getattr(self, "booster", None)  # bundles pickled before the lightgbm option have none
        if booster is not None and len(Z):
            # the booster's non-linear part on top: with w = beta the score is the booster's prediction
            A = np.hstack([Z, context(Z)])
            out += booster.predict(A) - (Z @ self.beta + A[:, len(self.beta):] @ self.gamma + self.intercept)
        return out


class AdaptiveWeights:
    """EW mean of each model's per-batch IC; weights are the positive part, normalised."""

    def __init__(self, n_models: int, halflife: float, prior_ic: np.ndarray | None = None) -> None:
        self.alpha = 1.0 - 0.5 ** (1.0 / max(halflife, 1e-9))
        self.ic = np.zeros(n_models) if prior_ic is None else np.nan_to_num(np.asarray(prior_ic, float)).copy()
        self.updates = 0

    def update(self, ic: np.ndarray) -> None:
        ok = np.isfinite(ic)
        self.ic[ok] += self.alpha * (ic[ok] - self.ic[ok])
        self.updates += int(ok.any())

    def weights(self) -> np.ndarray:
        pos = np.maximum(self.ic, 0.0)
        total = pos.sum()
        return pos / total if total > 0 else np.zeros_like(pos)


def effective_weights(meta: Meta, adaptive: np.ndarray, mix: float) -> np.ndarray:
    """The final per-model linear weight on Z; ``mix`` = share given to the adaptive weights."""
    scale = float(np.abs(meta.beta).sum())
    if not adaptive.any():  # no model has shown a positive IC recently: the meta-learner alone
        return meta.beta.copy()
    return (1.0 - mix) * meta.beta + mix * scale * adaptive


def row_ic(Z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """IC of each model column across symbols: Z [N, M], y [N] -> [M] (NaN with < 3 symbols)."""
    ok = np.isfinite(y)
    if ok.sum() < 3:
        return np.full(Z.shape[1], np.nan)
    z, yy = Z[ok] - Z[ok].mean(axis=0), y[ok] - y[ok].mean()
    den = np.sqrt((z * z).sum(axis=0) * (yy * yy).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (z * yy[:, None]).sum(axis=0) / den
    out[~(den > 0)] = np.nan
    return out


@dataclass
class Calibrator:
    """P(sign of score is right | |score|), isotonic on out-of-sample pairs; confidence helper."""

    iso: IsotonicRegression | None = None
    best: float = 0.5
    fitted_on: int = field(default=0)

    @classmethod
    def fit(cls, score: np.ndarray, y: np.ndarray) -> Calibrator:
        ok = np.isfinite(score) & np.isfinite(y) & (y != 0)
        if ok.sum() < 20:
            return cls()
        hit = (np.sign(score[ok]) == np.sign(y[ok])).astype(float)
        iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(np.abs(score[ok]), hit)
        best = float(iso.predict(np.abs(score[ok])).max())
        return cls(iso, best, int(ok.sum()))

    def reliability(self, score: np.ndarray) -> np.ndarray:
        """In [0, 1]: (P(hit) - 0.5) relative to the most reliable score level seen out of sample."""
        if self.iso is None or self.best <= 0.5:
            return np.zeros(score.shape)
        # what iso.predict computes (linear between the fitted steps, clipped), without its input checks
        p = np.interp(np.abs(np.nan_to_num(score)), self.iso.X_thresholds_, self.iso.y_thresholds_)
        return np.clip((p - 0.5) / (self.best - 0.5), 0.0, 1.0)


def confidence(Z: np.ndarray, W: np.ndarray, score: np.ndarray, cal: Calibrator) -> np.ndarray:
    """Half weighted agreement of the models with the final sign, half calibrated reliability."""
    w = np.abs(W) / max(float(np.abs(W).sum()), 1e-12)
    agree = ((np.sign(Z * np.sign(W)) == np.sign(score)[:, None]) * w).sum(axis=1)
    return np.clip(0.5 * agree + 0.5 * cal.reliability(score), 0.0, 1.0)
