"""``EnsembleModel``: the Model protocol over the feature engine and a trained bundle.

Per batch: features (the same FeatureEngine the training panel came from) -> every base model
on all ready symbols at once (tabular on ``X``, sequence models on the sequence buffer) ->
scaled predictions ``Z`` -> stacked score with adaptive weights -> confidence. Realised
returns update each model's EW IC ``horizon`` batches later.

Hot swap: a new champion (``CHAMPION`` file) is noticed between batches, loaded in a worker
thread, and installed at the start of a later ``update``; the feature state is kept, so no
batch is dropped and nothing re-warms. With no champion and ``train_on_start``, the model
collects history and trains in a spawned process; until a bundle is installed every symbol is
``ready=False`` (score NaN), so the sizing opens no new positions.
"""

from __future__ import annotations

import asyncio
import collections
import multiprocessing as mp
import time
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import numpy as np
import structlog

from algobotd.config import Config
from algobotd.domain import BarBatch
from algobotd.features.engine import FeatureEngine
from algobotd.models.base import Prediction
from algobotd.models.registry import ModelRegistry, new_model_id
from algobotd.models.retrain import EnsembleRetrainer
from algobotd.models.stack import AdaptiveWeights, confidence, effective_weights, row_ic
from algobotd.models.stream import SequenceStream, streamable
from algobotd.models.train import Bundle, SequenceLearner
from algobotd.store.writer import StoreWriter

log = structlog.get_logger(__name__)


def train_job(cfg: Config, batches: list[BarBatch], model_id: str) -> dict[str, Any]:
    """Runs in a spawned worker process: features over history -> train -> save -> promote."""
    import torch

    from algobotd.models.dataset import panel_from_batches
    from algobotd.models.train import first_start_spec, train

    torch.set_num_threads(cfg.model.threads)  # the daemon's cores stay free for the event loop
    panel = panel_from_batches(batches, cfg.features)
    bundle = train(panel, first_start_spec(cfg.model), model_id)
    reg = ModelRegistry.for_state(cfg.state.dir)
    reg.save(bundle)
    reg.promote(model_id)
    return {"model_id": model_id, "metrics": bundle.metrics}


class EnsembleModel:
    def __init__(self, cfg: Config, n_symbols: int, registry: ModelRegistry | None = None,
                 bundle: Bundle | None = None, store: StoreWriter | None = None) -> None:
        self.cfg = cfg
        self.store = store  # the daemon's writer: models trained or installed here get their `models` row
        self._recording: set[asyncio.Task[Any]] = set()
        mc = cfg.model
        self.entry, self.exit = mc.entry, mc.exit
        import torch

        # batched inference is tiny: more torch threads only contend with the event loop's core
        torch.set_num_threads(mc.threads)
        self.fe = FeatureEngine(cfg.features)
        self.warmup = self.fe.warmup
        self.registry = registry if registry is not None else ModelRegistry.for_state(cfg.state.dir)
        self.bundle: Bundle | None = None
        self.streams: dict[str, SequenceStream] = {}  # recurrent/conv models served one step per batch
        self.timings: dict[str, float] = {}  # seconds the features and each base model took on the last batch
        self.model_id = "ensemble-untrained"
        self.weights: dict[str, float] = {}
        self.aw: AdaptiveWeights | None = None
        self._stamp: tuple[int, str | None] = (0, None)
        self._loading: Future[Bundle] | None = None
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="model-load")
        self._training: Future[dict[str, Any]] | None = None
        self._pool: ProcessPoolExecutor | None = None
        # recent history: the first training (no champion) and challenger retrains train on it
        self.recent: collections.deque[BarBatch] = collections.deque(maxlen=max(mc.min_train_bars * 2, 1000))
        self.retrainer = EnsembleRetrainer(self)  # the ops monitor's Retrainer (drift / `ctl retrain`)
        self._past: collections.deque[tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]] = collections.deque()
        self._sym_key: tuple[str, ...] | None = None
        self._pos = np.zeros(0, dtype=np.int64)
        self._batches = 0
        self.swaps = 0
        self.last_error: str | None = None
        # a failed first training is not retried in a loop; an unusable champion (other features) is
        # no reason not to train one: with no bundle installed, train_on_start still applies
        self._training_failed = False
        self._trained = False
        self.last_confidence = float("nan")
        self._sig_var = np.zeros(0)
        self._prev_close = np.zeros(0)
        if bundle is not None:
            self.install(bundle)
        else:
            self._stamp = self.registry.stamp()
            if self._stamp[1] is not None:
                self.install(self.registry.load(self._stamp[1]))

    @property
    def history_wanted(self) -> int:
        """Warm-up bars wanted at start: enough to train on at once when there is no model yet."""
        mc = self.cfg.model
        return mc.min_train_bars if self.bundle is None and mc.train_on_start else 0

    # --- swapping ---------------------------------------------------------------------------

    def install(self, bundle: Bundle) -> None:
        """Make ``bundle`` the serving model (between batches only: called from update/init)."""
        if tuple(bundle.feature_names) != tuple(self.fe.names):
            self.last_error = f"{bundle.model_id}: trained on other features; not installed"
            log.error("model not installed", model_id=bundle.model_id, reason=self.last_error)
            return
        self.bundle = bundle
        self.model_id = bundle.model_id
        rewarm = self.cfg.model.rewarm_bars or 10**12  # 0: never re-warm (a state then spans all history)
        self.streams = {m: SequenceStream(lr, rewarm) for m, lr in bundle.learners.items()
                        if isinstance(lr, SequenceLearner) and streamable(lr) and self.cfg.model.stateful}
        self.timings = {}
        self.aw = AdaptiveWeights(len(bundle.names), bundle.spec.ic_halflife, bundle.prior_ic)
        self._past.clear()  # old Z columns belong to the previous bundle's models
        self._set_weights()
        self.swaps += 1
        log.info("model installed", model_id=bundle.model_id, models=list(bundle.names))
        self.record(bundle.model_id, champion=True)

    def record(self, model_id: str, champion: bool) -> None:
        """Queue the model's ``models`` row on the store writer's thread (same code as `algobotd train`)."""
        if self.store is None or not (self.registry.path(model_id) / "meta.json").is_file():
            return  # no store (tests, tools) or a bundle that was never saved (nothing to point the row at)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # constructed outside the event loop: the row is written when the next model installs
        store, reg = self.store, self.registry
        task = loop.create_task(store.run(lambda con: reg.record_on(con, model_id, champion)))
        self._recording.add(task)
        task.add_done_callback(self._recorded)

    def _recorded(self, task: asyncio.Task[Any]) -> None:
        self._recording.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("models row not written", error=str(task.exception()))

    def _set_weights(self) -> None:
        assert self.bundle is not None and self.aw is not None
        W = effective_weights(self.bundle.meta, self.aw.weights(), self.bundle.spec.adaptive_mix)
        self._W = W
        tot = float(np.abs(W).sum()) or 1.0
        self.weights = {m: round(float(w) / tot, 4) for m, w in zip(self.bundle.names, W)}

    def _poll(self) -> None:
        if self._loading is not None and self._loading.done():
            fut, self._loading = self._loading, None
            try:
                self.install(fut.result())
            except Exception as exc:  # a broken artifact must not stop trading with the current model
                self.last_error = f"load failed: {exc}"
                log.error("model load failed", error=str(exc))
        if self._training is not None and self._training.done():
            fut, self._training = self._training, None
            try:
                fut.result()
                self._trained = True  # promoted: the champion poll loads it; no second first-start training
            except Exception as exc:
                self.last_error = f"training failed: {exc}"
                self._training_failed = True
                log.error("background training failed", error=str(exc))
        if self._batches % self.cfg.model.reload_check_bars == 0 and self._loading is None:
            stamp = self.registry.stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                if stamp[1] is not None and stamp[1] != self.model_id:
                    self._loading = self._loader.submit(self.registry.load, stamp[1])

    def _maybe_train(self) -> None:
        mc = self.cfg.model
        if self.bundle is not None or self._training is not None or not mc.train_on_start:
            return
        if len(self.recent) < mc.min_train_bars or self._training_failed or self._trained:
            return
        if self._pool is None:  # spawn: no forked copy of the event loop, the store or sockets
            self._pool = ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"))
        mid = new_model_id()
        self._training = self._pool.submit(train_job, self.cfg, list(self.recent), mid)
        log.info("training on warm-up history in the background", model_id=mid, bars=len(self.recent))

    # --- per batch --------------------------------------------------------------------------

    def update(self, batch: BarBatch) -> Prediction:
        self._poll()
        self._batches += 1
        t0 = time.perf_counter()
        X = self.fe.update(batch)
        self.timings["features"] = time.perf_counter() - t0
        n = len(batch)
        if batch.symbols != self._sym_key:
            self._sym_key = batch.symbols
            self._pos = np.array([self.fe.symbols[s] for s in batch.symbols], dtype=np.int64)
            self._past.clear()
        close = np.where(batch.valid, batch.close, np.nan)
        sigma = self._track_vol(close, n)
        self.recent.append(batch)
        if self.bundle is None:
            self._maybe_train()
            return Prediction(np.full(n, np.nan), np.zeros(n), np.zeros(n, dtype=bool), {})
        b = self.bundle
        ready = self.fe.ready[self._pos] & batch.valid
        idx = np.flatnonzero(ready)
        P = np.full((n, len(b.names)), np.nan)
        win = self.fe.sequence.window()
        for j, m in enumerate(b.names):
            t0 = time.perf_counter()
            stream = self.streams.get(m)
            if stream is not None:  # steps every batch, ready symbols or not: its state must see every row
                P[idx, j] = stream.step(win)[self._pos[idx]]
            elif idx.size:
                lr = b.learners[m]
                P[idx, j] = lr.predict(win[self._pos[idx]]) if isinstance(lr, SequenceLearner) else lr.predict(X[idx])
            self.timings[m] = time.perf_counter() - t0
        Z = b.meta.scaler(P)
        self._learn(Z, close, sigma, ready)
        score = np.full(n, np.nan)
        conf = np.zeros(n)
        if idx.size:
            # without the intercept (the label's mean over the training window): with little signal
            # the scores vary little, so that one estimate, in score-sd units, would put every symbol
            # above `entry` or none of them (seen on the simulated market: a median score of -1.9)
            score[idx] = (b.meta.linear(Z[idx], self._W) - b.meta.intercept) / b.meta.out_std
            conf[idx] = confidence(Z[idx], self._W, score[idx], b.calibrator)
            self.last_confidence = float(conf[idx].mean())
        return Prediction(score, conf, ready, self.weights)

    def _track_vol(self, close: np.ndarray, n: int) -> np.ndarray:
        """EWMA vol of 1-bar log returns (the label's normaliser) for the realised-IC updates."""
        if self._prev_close.size != n:
            self._prev_close, self._sig_var = np.full(n, np.nan), np.full(n, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.log(close / self._prev_close)
        a = 2.0 / (self.cfg.model.label_vol_span + 1.0)
        ok = np.isfinite(r)
        first = ok & ~np.isfinite(self._sig_var)
        self._sig_var = np.where(first, r * r, np.where(ok, (1 - a) * self._sig_var + a * r * r, self._sig_var))
        self._prev_close = np.where(np.isfinite(close), close, self._prev_close)
        return np.sqrt(self._sig_var)

    def _learn(self, Z: np.ndarray, close: np.ndarray, sigma: np.ndarray, ready: np.ndarray) -> None:
        """IC of each model on the batch ``horizon`` bars ago, now that its label is realised."""
        assert self.bundle is not None and self.aw is not None
        h = self.bundle.spec.horizon
        self._past.append((self._sym_key or (), np.where(ready[:, None], Z, np.nan), close, sigma))
        if len(self._past) <= h:
            return
        _, z0, c0, s0 = self._past.popleft()
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.log(close / c0) / (s0 * np.sqrt(h))
        ok = np.isfinite(z0).all(axis=1) & np.isfinite(y)
        if ok.sum() >= 3:
            self.aw.update(row_ic(z0[ok], y[ok]))
            self._set_weights()

    # --- status -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        b = self.bundle
        return {
            "kind": "ensemble", "model_id": self.model_id, "ready": b is not None,
            "training": self._training is not None, "loading": self._loading is not None,
            "swaps": self.swaps, "weights": dict(self.weights),
            "recent_ic": ({m: round(float(v), 4) for m, v in zip(b.names, self.aw.ic)}
                          if b is not None and self.aw is not None else {}),
            "mean_confidence": None if np.isnan(self.last_confidence) else round(self.last_confidence, 4),
            "unavailable": dict(b.unavailable) if b is not None else {},
            "oos": ({k: (v if np.isfinite(v) else None) for k, v in b.metrics["ensemble"].items()}  # JSON: no NaN
                    if b is not None else None),
            "error": self.last_error, "history_bars": len(self.recent),
        }

    def close(self) -> None:
        """Stop background work; a half-finished training is abandoned (it never promoted anything)."""
        self._loader.shutdown(wait=False, cancel_futures=True)
        for pool in (self._pool, self.retrainer._pool):
            if pool is not None:
                # shutdown() alone would let interpreter exit wait for a running fit: end the worker
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
