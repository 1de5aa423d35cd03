"""Registry round trip, the EnsembleModel in a running engine, hot swap, background training."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from algobotd.config import load
from algobotd.domain import BarBatch
from algobotd.models.dataset import panel_from_batches, sample_index
from algobotd.models.ensemble import EnsembleModel
from algobotd.models.registry import ModelRegistry
from algobotd.models.train import predict_learner, train
from tests.models.conftest import small_spec
from tests.risk.helpers import Rig, T0, BAR, config

N = 6


def ar_closes(T: int, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed)
    r = np.zeros((T, N))
    for t in range(1, T):
        r[t] = -0.4 * r[t - 1] + g.normal(0, 0.005, N)
    return 100 * np.exp(np.cumsum(r, axis=0))


def to_batches(c: np.ndarray, syms: tuple[str, ...]) -> list[BarBatch]:
    return [BarBatch(T0 + t * BAR, syms, c[max(t - 1, 0)], np.maximum(c[t], c[max(t - 1, 0)]) * 1.0005,
                     np.minimum(c[t], c[max(t - 1, 0)]) * 0.9995, c[t], np.full(N, 1e6), np.ones(N, bool),
                     c[t] * 0.9999, c[t] * 1.0001) for t in range(len(c))]


SYMS = tuple(f"S{i}" for i in range(N))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    batches = to_batches(ar_closes(260, 0), SYMS)
    panel = panel_from_batches(batches)
    a = train(panel, small_spec("lightgbm", "cnn", folds=2), "ens-a")
    b = train(panel, small_spec("lightgbm", folds=2, seed=1, adaptive_mix=0.2), "ens-b")
    return panel, a, b


def test_save_load_round_trip_gives_identical_predictions(trained, tmp_path: Path) -> None:
    panel, a, _ = trained
    reg = ModelRegistry(tmp_path / "models")
    reg.save(a)
    loaded = reg.load("ens-a")
    t, i = sample_index(panel, np.where(panel.ready, 0.0, np.nan), np.arange(100, 200))
    for m in a.names:
        assert np.array_equal(predict_learner(a.learners[m], panel, t, i), predict_learner(loaded.learners[m], panel, t, i))
    cfg = load(None, ["model.kind=\"ensemble\""], str(tmp_path / "state"))
    m1, m2 = EnsembleModel(cfg, N, bundle=a), EnsembleModel(cfg, N, bundle=loaded)
    batches = to_batches(ar_closes(120, 7), SYMS)
    for bt in batches:
        p1, p2 = m1.update(bt), m2.update(bt)
        assert np.array_equal(p1.score, p2.score, equal_nan=True) and np.array_equal(p1.confidence, p2.confidence)
    assert p1.ready.all() and np.isfinite(p1.score).all()
    assert set(p1.weights) == {"lightgbm", "cnn"} and ((p1.confidence >= 0) & (p1.confidence <= 1)).all()
    assert m1.aw is not None and m1.aw.updates > 0  # realised returns fed the recent-IC weights


def test_champion_pointer_and_models_row(trained, tmp_path: Path) -> None:
    _, a, b = trained
    reg = ModelRegistry(tmp_path / "models")
    assert reg.champion() is None
    for x in (a, b):
        reg.save(x)
    reg.promote("ens-a")
    assert reg.champion() == "ens-a" and reg.ids() == ["ens-a", "ens-b"]
    with pytest.raises(FileNotFoundError):
        reg.promote("nope")
    db = tmp_path / "algobot.duckdb"
    assert reg.record(db, a, champion=True) and reg.record(db, b, champion=True)
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT model_id, champion, metrics FROM models ORDER BY model_id").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("ens-a", False), ("ens-b", True)]
    assert '"ensemble"' in rows[0][2] and '"rank_ic"' in rows[0][2]


async def test_hot_swap_in_a_running_engine_drops_no_batch(trained, tmp_path: Path) -> None:
    _, a, b = trained
    cfg = config(tmp_path, "model.kind=\"ensemble\"")
    reg = ModelRegistry.for_state(cfg.state.dir)
    reg.save(a)
    reg.save(b)
    reg.promote("ens-a")
    rig = Rig(tmp_path, cfg, SYMS)
    await rig.start()
    assert rig.engine.model.model_id == "ens-a"  # the champion is loaded at start
    closes = ar_closes(140, 3)
    seen: list[str] = []
    for k in range(140):
        if k == 90:
            reg.promote("ens-b")  # a newly promoted champion while the engine runs
        await rig.bar(closes[k])
        seen.append(rig.engine.model.model_id)
        if k >= 90 and seen[-1] == "ens-a":
            time.sleep(0.01)  # let the loader thread finish; the engine keeps processing meanwhile
    assert seen[89] == "ens-a" and seen[-1] == "ens-b" and rig.engine.model.swaps == 2
    warm = rig.engine.model.warmup
    rows = await rig.query("SELECT count(DISTINCT ts), count(DISTINCT model_id), min(confidence), max(confidence) "
                           "FROM predictions")
    assert rows[0][0] == 140 - warm + 1  # one prediction batch for every bar once features are ready
    assert rows[0][1] == 2 and 0 <= rows[0][2] <= rows[0][3] <= 1
    w = await rig.query("SELECT weights FROM predictions WHERE model_id = 'ens-a' LIMIT 1")
    assert "lightgbm" in w[0][0] and "cnn" in w[0][0]
    status = rig.engine.model.status()
    assert status["model_id"] == "ens-b" and status["ready"] and "lightgbm" in status["weights"]
    # every model the daemon installs gets the `models` row `algobotd train` writes, champion flag moved
    models = await rig.query("SELECT model_id, kind, champion, path, metrics FROM models ORDER BY model_id")
    assert [(r[0], r[1], r[2]) for r in models] == [("ens-a", "ensemble", False), ("ens-b", "ensemble", True)]
    assert models[1][3] == str(reg.path("ens-b")) and '"rank_ic"' in models[1][4]
    await rig.close()


def test_first_start_trains_in_background_and_is_not_ready_until_then(tmp_path: Path) -> None:
    cfg = load(None, ["model.kind=\"ensemble\"", "model.models=\"lightgbm\"", "model.min_train_bars=200",
                      "model.gbm_rounds=30", "model.folds=2", "model.horizon=1", "model.embargo=1"],
               str(tmp_path / "state"))
    model = EnsembleModel(cfg, N)
    batches = to_batches(ar_closes(200, 5), SYMS)
    for bt in batches:
        p = model.update(bt)
        assert not p.ready.any() and np.isnan(p.score).all()  # no model: nothing may be opened
    assert model.status()["training"]
    more = to_batches(ar_closes(400, 6), SYMS)[200:]
    deadline = time.monotonic() + 120
    k = 0
    while model.bundle is None and time.monotonic() < deadline:
        model.update(_shift(more[k % len(more)], 200 + k))  # live batches keep coming while it trains
        k += 1
        time.sleep(0.05)
    assert model.bundle is not None, model.status()
    p = model.update(_shift(more[0], 200 + k))
    assert p.ready.all() and np.isfinite(p.score).all()
    assert ModelRegistry.for_state(cfg.state.dir).champion() == model.model_id
    # one first-start training: none was started again between its end and the champion's install
    assert ModelRegistry.for_state(cfg.state.dir).ids() == [model.model_id] and not model.status()["training"]
    model.close()


def test_the_live_score_ignores_the_meta_learners_intercept(trained, tmp_path: Path) -> None:
    """The intercept (the label's mean in training) would shift every symbol's score alike: with a
    weak signal, past `entry` for all symbols or for none. The served score leaves it out."""
    import dataclasses

    _, a, _ = trained
    cfg = load(None, ["model.kind=\"ensemble\""], str(tmp_path / "state"))
    shifted = dataclasses.replace(a, meta=dataclasses.replace(a.meta, intercept=a.meta.intercept + 5.0))
    m1, m2 = EnsembleModel(cfg, N, bundle=a), EnsembleModel(cfg, N, bundle=shifted)
    for bt in to_batches(ar_closes(120, 4), SYMS):
        p1, p2 = m1.update(bt), m2.update(bt)
        np.testing.assert_allclose(p1.score, p2.score, atol=1e-9)
    assert p1.ready.all() and abs(float(np.mean(p1.score))) < 3.0
    m1.close()
    m2.close()


def _shift(b: BarBatch, k: int) -> BarBatch:
    import dataclasses

    return dataclasses.replace(b, ts=T0 + k * BAR)


async def test_retrainer_scores_champion_and_promotes_only_a_better_challenger(trained, tmp_path: Path) -> None:
    from algobotd.models.retrain import EnsembleRetrainer, challenger_job
    from algobotd.ops.monitor import ModelCandidate

    _, a, _ = trained
    cfg = load(None, ["model.kind=\"ensemble\"", "model.models=\"lightgbm\"", "model.gbm_rounds=30", "model.folds=2",
                      "model.horizon=1", "model.embargo=1"], str(tmp_path / "state"))
    reg = ModelRegistry.for_state(cfg.state.dir)
    reg.save(a)
    reg.promote("ens-a")
    res = challenger_job(cfg, to_batches(ar_closes(260, 11), SYMS), "ens-c", "ens-a")  # what the worker runs
    assert np.isfinite(res["ic"]) and np.isfinite(res["champion_ic"]) and res["champion_ic"] > 0.1
    assert "ens-c" in reg.ids() and reg.champion() == "ens-a"  # saved, not promoted by the job
    model = EnsembleModel(cfg, N)
    r = EnsembleRetrainer(model)
    assert not await r.promote_if_better(ModelCandidate("ens-c", None, {"ic": 0.1, "champion_ic": 0.2}))
    assert reg.champion() == "ens-a"
    assert await r.promote_if_better(ModelCandidate("ens-c", None, {"ic": 0.3, "champion_ic": 0.2}))
    assert reg.champion() == "ens-c"
    model.close()


def test_close_ends_a_running_background_training(tmp_path: Path) -> None:
    cfg = load(None, ["model.kind=ensemble", "model.models=lightgbm", "model.min_train_bars=120"],
               str(tmp_path / "state"))
    model = EnsembleModel(cfg, N)
    for bt in to_batches(ar_closes(120, 8), SYMS):
        model.update(bt)
    assert model.status()["training"] and model._pool is not None
    procs = list(model._pool._processes.values())
    model.close()
    deadline = time.monotonic() + 10
    while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert procs and not any(p.is_alive() for p in procs)


def test_ensemble_is_the_shipped_default_and_the_test_suite_runs_the_baseline(tmp_path: Path) -> None:
    from tests.conftest import ROOT

    assert load(ROOT / "config.toml").model.kind == "ensemble"
    assert load().model.kind == "baseline"  # ALGOBOT_CONFIG (tests/conftest.py): no test trains by accident


def test_first_start_asks_for_its_training_history_and_trains_on_a_short_budget(trained, tmp_path: Path) -> None:
    from algobotd.models.train import first_start_spec, spec_from

    cfg = load(None, ["model.kind=\"ensemble\"", "model.epochs=20", "model.gbm_rounds=300", "model.start_epochs=3",
                      "model.start_gbm_rounds=50", "model.min_train_bars=321"], str(tmp_path / "state"))
    first, full = first_start_spec(cfg.model), spec_from(cfg.model)
    assert (first.deep.epochs, first.tree.rounds) == (3, 50) and (full.deep.epochs, full.tree.rounds) == (20, 300)
    assert first.models == full.models and first.horizon == full.horizon
    model = EnsembleModel(cfg, N)
    assert model.history_wanted == 321  # the warm-up fetches this much: training starts right after it
    model.install(trained[1])
    assert model.history_wanted == 0
    model.close()


def test_a_champion_trained_on_other_features_is_refused_and_a_new_one_trained(trained, tmp_path: Path) -> None:
    import dataclasses

    cfg = load(None, ["model.kind=ensemble", "model.models=lightgbm", "model.min_train_bars=120"],
               str(tmp_path / "state"))
    reg = ModelRegistry.for_state(cfg.state.dir)
    reg.save(dataclasses.replace(trained[1], model_id="ens-old", feature_names=("gone",)))
    reg.promote("ens-old")
    model = EnsembleModel(cfg, N)
    assert model.bundle is None and "other features" in (model.last_error or "")
    for bt in to_batches(ar_closes(120, 8), SYMS):
        assert not model.update(bt).ready.any()
    assert model.status()["training"]  # the first-start training still runs: the daemon will trade
    model.close()
