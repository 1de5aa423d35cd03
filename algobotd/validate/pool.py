"""Run independent tasks on a local process pool (default) or a Ray cluster; results in task order.

Tasks are pure functions of their arguments, so the backend and the worker count never change
a result. Workers are spawned (not forked): no inherited threads, event loops or DuckDB handles.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from algobotd.config import ConfigError

log = structlog.get_logger(__name__)


def _worker_init(level: str) -> None:
    """Once per worker process: one BLAS thread per worker, the engine imported once.

    Reference data (S&P 500 returns, an ensemble champion) is cached per process on first use."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from algobotd.ops import logging as oplog

    oplog.setup(level, "auto", stream=sys.stderr)  # stdout belongs to the parent (--json)
    import algobotd.validate.paths  # noqa: F401  # the engine's imports, once, before the first task


def run_tasks(fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]], workers: int,
              ray_address: str | None = None, what: str = "tasks") -> list[Any]:
    if ray_address is not None:
        return _run_ray(fn, tasks, workers, ray_address)
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max(1, workers), mp_context=ctx, initializer=_worker_init,
                                             initargs=(logging.getLevelName(logging.getLogger().level).lower(),)) as pool:
        futs = [pool.submit(fn, *t) for t in tasks]
        step = max(1, len(futs) // 10)
        for done, _ in enumerate(concurrent.futures.as_completed(futs), 1):
            if done % step == 0 or done == len(futs):  # long runs say how far they are (stderr log)
                log.info("progress", what=what, done=done, total=len(futs))
        return [f.result() for f in futs]


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _run_ray(fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]], workers: int, address: str) -> list[Any]:
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray", "Ray is not installed (pip install 'algobot[distributed]')") from None
    started_here = not ray.is_initialized()
    if started_here:
        # workers import algobotd from this checkout, with one BLAS thread each
        root = str(Path(__file__).resolve().parents[2])
        env = {"env_vars": {"PYTHONPATH": root, "OMP_NUM_THREADS": "1"}}
        if address in ("local", ""):
            ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False, runtime_env=env)
        else:
            ray.init(address=address, log_to_driver=False, runtime_env=env)
    try:
        remote = ray.remote(num_cpus=1)(fn)
        return list(ray.get([remote.remote(*t) for t in tasks]))
    finally:
        if started_here:
            ray.shutdown()
