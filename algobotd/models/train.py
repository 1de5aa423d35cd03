"""Training: purged walk-forward out-of-fold predictions -> honest OOS metrics -> stacked bundle.

1. labels with an explicit horizon (``algobotd.labels``) and their end times;
2. purged walk-forward folds; every base model is fitted on each fold's training times and
   predicts the fold's test times (out-of-fold, OOF);
3. the ensemble is evaluated out of sample too: for test fold k the meta-learner is fitted on
   the OOF predictions of earlier folds only (purged), and the adaptive weights at time t only
   use ICs whose labels ended by t; the models and the baseline are scored on the same samples;
4. the deployable bundle: base models refitted on all labelled history, the meta-learner on
   all OOF predictions, the calibrator on the ensemble's OOS scores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from algobotd.config import ModelConfig
from algobotd.labels import Labels, make_labels
from algobotd.models.dataset import Panel, sample_index
from algobotd.models.deep import SEQUENCE, DeepParams, SequenceLearner
from algobotd.models.gbm import TABULAR, TabularLearner, TreeParams, unavailable_reason
from algobotd.models.metrics import evaluate
from algobotd.models.splits import purged_holdout, purged_walk_forward
from algobotd.models.stack import AdaptiveWeights, Calibrator, Meta, effective_weights, row_ic

ALL_MODELS = (*TABULAR, *SEQUENCE)
Learner = TabularLearner | SequenceLearner


@dataclass(frozen=True)
class TrainSpec:
    models: tuple[str, ...] = ("lightgbm", "random_forest", "hist_gbm", "lstm", "cnn", "attention")
    label: str = "return"  # "return" | "triple_barrier"
    horizon: int = 5
    cs_zscore: bool = False
    vol_span: int = 60
    pt_mult: float = 2.0
    sl_mult: float = 2.0
    folds: int = 4
    embargo: int = 5
    val_frac: float = 0.2
    meta_alpha: float = 10.0
    meta: str = "ridge"  # "ridge" | "lightgbm"
    ic_halflife: float = 20.0
    adaptive_mix: float = 0.5
    tree: TreeParams = field(default_factory=TreeParams)
    deep: DeepParams = field(default_factory=DeepParams)
    seed: int = 0


def spec_from(cfg: ModelConfig, models: str | None = None, device: str | None = None) -> TrainSpec:
    names = tuple(m.strip() for m in (models or cfg.models).split(",") if m.strip())
    bad = [m for m in names if m not in ALL_MODELS]
    if bad:
        raise ValueError(f"unknown models {bad}; known: {', '.join(ALL_MODELS)}")
    return TrainSpec(
        models=names, label=cfg.label, horizon=cfg.horizon, cs_zscore=cfg.cs_zscore, vol_span=cfg.label_vol_span,
        pt_mult=cfg.pt_mult, sl_mult=cfg.sl_mult, folds=cfg.folds, embargo=cfg.embargo, meta_alpha=cfg.meta_alpha,
        meta=cfg.meta, ic_halflife=cfg.ic_halflife, adaptive_mix=cfg.adaptive_mix, seed=cfg.train_seed,
        tree=TreeParams(rounds=cfg.gbm_rounds, threads=cfg.threads, seed=cfg.train_seed),
        deep=DeepParams(seq_len=cfg.seq_len, hidden=cfg.hidden, epochs=cfg.epochs, threads=cfg.threads,
                        device=device or cfg.device, seed=cfg.train_seed))


def first_start_spec(cfg: ModelConfig) -> TrainSpec:
    """The daemon's first training (no champion yet): the configured spec on a short budget, so that
    trading starts soon; a later retrain (ops monitor, `ctl retrain`, `algobotd train`) uses the full one."""
    s = spec_from(cfg)
    return replace(s, tree=replace(s.tree, rounds=min(s.tree.rounds, cfg.start_gbm_rounds)),
                   deep=replace(s.deep, epochs=min(s.deep.epochs, cfg.start_epochs)))


@dataclass
class Bundle:
    """Everything inference needs; pickled to ``<state>/models/<id>/bundle.pkl``."""

    model_id: str
    spec: TrainSpec
    feature_names: tuple[str, ...]
    names: tuple[str, ...]  # the base models actually trained, in column order of Z
    learners: dict[str, Learner]
    meta: Meta
    calibrator: Calibrator
    prior_ic: np.ndarray
    metrics: dict[str, Any]
    unavailable: dict[str, str]


def make_learner(name: str, spec: TrainSpec) -> Learner:
    if name in SEQUENCE:
        return SequenceLearner(name, spec.deep)
    return TabularLearner(name, spec.tree)


def fit_learner(lr: Learner, panel: Panel, y: np.ndarray, end: np.ndarray, times: np.ndarray,
                spec: TrainSpec) -> None:
    fit_t, val_t = purged_holdout(times, end, spec.val_frac, spec.embargo)
    t, i = sample_index(panel, y, fit_t)
    tv, iv = sample_index(panel, y, val_t)
    if isinstance(lr, SequenceLearner):
        lr.fit(panel.X, t, i, y[t, i], tv, iv, y[tv, iv])
    else:
        lr.fit(panel.X[t, i], y[t, i], panel.X[tv, iv], y[tv, iv])


def predict_learner(lr: Learner, panel: Panel, t: np.ndarray, i: np.ndarray) -> np.ndarray:
    if isinstance(lr, SequenceLearner):
        return lr.predict_panel(panel.X, t, i)
    return lr.predict(panel.X[t, i])


def ensemble_path(P: np.ndarray, y: np.ndarray, end: np.ndarray, meta: Meta, times: np.ndarray,
                  spec: TrainSpec, prior_ic: np.ndarray, horizon: int) -> np.ndarray:
    """Ensemble scores at ``times`` (in order) as the live model would produce them: adaptive
    weights updated with the IC of time s only once ``end[s] <= t`` (label realised)."""
    aw = AdaptiveWeights(P.shape[2], spec.ic_halflife, prior_ic)
    out = np.full(P.shape[:2], np.nan)
    pending: list[int] = []
    e = end.max(axis=1)
    for t in times:
        while pending and e[pending[0]] <= t:
            s = pending.pop(0)
            aw.update(row_ic(meta.scaler(P[s]), y[s]))
        ok = np.isfinite(P[t]).all(axis=1)
        if ok.any():
            Z = meta.scaler(P[t, ok])
            W = effective_weights(meta, aw.weights(), spec.adaptive_mix)
            out[t, ok] = meta.linear(Z, W)  # label scale (for MSE); the live score divides by out_std
        pending.append(int(t))
    return out


def _meta_rows(P: np.ndarray, y: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows, lab = P[times].reshape(-1, P.shape[2]), y[times].reshape(-1)
    ok = np.isfinite(rows).all(axis=1) & np.isfinite(lab)
    return rows[ok], lab[ok]


def train(panel: Panel, spec: TrainSpec, model_id: str = "", log: Any = None) -> Bundle:
    say = log or (lambda *a, **k: None)
    labels: Labels = make_labels(panel.close, spec.label, spec.horizon, spec.vol_span, spec.cs_zscore,
                                 spec.pt_mult, spec.sl_mult)
    y, end = labels.y, labels.end
    y = np.where(panel.ready, y, np.nan)
    unavailable = {m: r for m in spec.models if (r := unavailable_reason(m)) is not None}
    names = tuple(m for m in spec.models if m not in unavailable)
    if not names:
        raise ValueError("no trainable model among " + ", ".join(spec.models))
    first = int(np.argmax(panel.ready.any(axis=1))) if panel.ready.any() else panel.shape[0]
    splits = purged_walk_forward(end, spec.folds, spec.embargo, first=first, min_train=spec.horizon + 10)
    if len(splits) < 2:
        raise ValueError(f"not enough history for {spec.folds} purged folds ({panel.shape[0]} bars)")
    T, N, _ = panel.shape
    P = np.full((T, N, len(names)), np.nan)
    timing: dict[str, float] = {m: 0.0 for m in names}
    for k, sp in enumerate(splits):
        t, i = sample_index(panel, y, sp.test)
        for j, m in enumerate(names):
            t0 = time.perf_counter()
            lr = make_learner(m, spec)
            fit_learner(lr, panel, y, end, sp.train, spec)
            P[t, i, j] = predict_learner(lr, panel, t, i)
            timing[m] += time.perf_counter() - t0
        say("fold done", fold=k + 1, folds=len(splits))
    # ensemble OOS: test folds 2..K, meta fitted on earlier OOF rows whose labels ended in time
    e = end.max(axis=1)
    S = np.full((T, N), np.nan)
    for k in range(1, len(splits)):
        s0 = int(splits[k].test[0])
        prior = np.concatenate([sp.test for sp in splits[:k]])
        prior = prior[e[prior] < s0 - spec.embargo]
        Pr, yr = _meta_rows(P, y, prior)
        meta_k = Meta.fit(names, Pr, yr, spec.meta_alpha, spec.meta, spec.seed)
        prior_ic = _ic_by_model(P, y, prior)
        S[splits[k].test] = ensemble_path(P, y, end, meta_k, splits[k].test, spec, prior_ic, spec.horizon)[splits[k].test]
    eval_t = np.concatenate([sp.test for sp in splits[1:]])
    mask = np.zeros((T, N), dtype=bool)
    mask[eval_t] = True
    mask &= np.isfinite(S) & np.isfinite(y)
    pick = lambda a: np.where(mask, a, np.nan)  # noqa: E731 (same samples for every score)
    metrics: dict[str, Any] = {"models": {m: evaluate(pick(P[:, :, j]), pick(y)) for j, m in enumerate(names)},
                               "ensemble": evaluate(pick(S), pick(y)),
                               "baseline": evaluate(pick(panel.baseline), pick(y)),
                               "fit_seconds": {m: round(v / len(splits), 3) for m, v in timing.items()},
                               "folds": len(splits), "label": labels.kind, "horizon": spec.horizon,
                               "eval_bars": int(eval_t.size), "eval_from": int(eval_t.min()), "symbols": N}
    best = max((metrics["models"][m]["ic"] for m in names), key=lambda v: -np.inf if v != v else v)
    metrics["ensemble_beats_best_model"] = bool(metrics["ensemble"]["ic"] > best)
    # the deployable bundle
    oof_t = np.concatenate([sp.test for sp in splits])
    Pa, ya = _meta_rows(P, y, oof_t)
    meta = Meta.fit(names, Pa, ya, spec.meta_alpha, spec.meta, spec.seed)
    calibrator = Calibrator.fit(S[mask] / meta.out_std, y[mask])
    prior_ic = _ic_by_model(P, y, splits[-1].test)
    all_t = np.arange(first, T)
    learners: dict[str, Learner] = {}
    for m in names:
        lr = make_learner(m, spec)
        fit_learner(lr, panel, y, end, all_t[e[all_t] < T], spec)
        learners[m] = lr
    say("final fit done", models=list(names))
    return Bundle(model_id, spec, panel.feature_names, names, learners, meta, calibrator, prior_ic, metrics,
                  unavailable)


def _ic_by_model(P: np.ndarray, y: np.ndarray, times: np.ndarray) -> np.ndarray:
    ics = np.array([row_ic(P[t], y[t]) for t in times]) if len(times) else np.zeros((0, P.shape[2]))
    with np.errstate(invalid="ignore"):
        out = np.nanmean(ics, axis=0) if ics.size and np.isfinite(ics).any() else np.zeros(P.shape[2])
    return np.nan_to_num(out)


def with_models(spec: TrainSpec, models: tuple[str, ...]) -> TrainSpec:
    return replace(spec, models=models)
