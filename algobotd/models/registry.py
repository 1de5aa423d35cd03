"""Versioned model artifacts under ``<state>/models/<id>/`` with a champion pointer.

``<id>/bundle.pkl`` holds the fitted bundle (torch nets as state dicts), ``<id>/meta.json``
its params and out-of-sample metrics. ``CHAMPION`` names the model the daemon serves; it is
replaced atomically (write + rename), and a running daemon polls its (mtime, content) between
batches to hot-swap. The DuckDB ``models`` row mirrors this when the store is not held by a
running daemon (DuckDB allows one writer process); the files are the source of truth.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import pickle
import secrets
from pathlib import Path
from typing import Any

from algobotd.models.train import Bundle

CHAMPION = "CHAMPION"


def new_model_id() -> str:
    return f"ens-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


class ModelRegistry:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @classmethod
    def for_state(cls, state_dir: str | Path) -> ModelRegistry:
        return cls(Path(state_dir) / "models")

    def path(self, model_id: str) -> Path:
        return self.root / model_id

    def save(self, bundle: Bundle) -> Path:
        d = self.path(bundle.model_id)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / "bundle.pkl.tmp"
        with tmp.open("wb") as f:
            pickle.dump(bundle, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(d / "bundle.pkl")
        info = {"model_id": bundle.model_id, "kind": "ensemble", "created_at": dt.datetime.now(dt.UTC).isoformat(),
                "params": params_of(bundle), "metrics": bundle.metrics}
        (d / "meta.json").write_text(json.dumps(info, indent=1, default=float))
        return d

    def load(self, model_id: str) -> Bundle:
        # our own artifacts only (written by `algobotd train` into the state dir), never downloaded
        with (self.path(model_id) / "bundle.pkl").open("rb") as f:
            bundle = pickle.load(f)  # noqa: S301
        if not isinstance(bundle, Bundle):
            raise TypeError(f"{model_id}: not a model bundle")
        return bundle

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "bundle.pkl").is_file())

    def promote(self, model_id: str) -> None:
        if not (self.path(model_id) / "bundle.pkl").is_file():
            raise FileNotFoundError(f"no model {model_id} under {self.root}")
        tmp = self.root / f".{CHAMPION}.{os.getpid()}"
        tmp.write_text(model_id)
        tmp.replace(self.root / CHAMPION)  # atomic: a reader sees the old or the new id, never half

    def champion(self) -> str | None:
        try:
            mid = (self.root / CHAMPION).read_text().strip()
        except FileNotFoundError:
            return None
        return mid or None

    def stamp(self) -> tuple[int, str | None]:
        """Cheap change detector for the hot-swap poll (one stat, one small read on change)."""
        try:
            m = (self.root / CHAMPION).stat().st_mtime_ns
        except FileNotFoundError:
            return (0, None)
        return (m, self.champion())

    def record(self, db_path: str | Path, bundle: Bundle, champion: bool) -> bool:
        """Write/replace the ``models`` row; False when the store is held by a running daemon."""
        import duckdb

        from algobotd.store.writer import connect

        try:
            con = connect(db_path)
        except duckdb.IOException:
            return False
        try:
            self.record_on(con, bundle.model_id, champion)
        finally:
            con.close()
        return True

    def record_on(self, con: Any, model_id: str, champion: bool) -> None:
        """The ``models`` row of a saved model (params and metrics from its meta.json) on ``con``.

        The daemon runs this on its store writer's connection (``StoreWriter.run``)."""
        info = json.loads((self.path(model_id) / "meta.json").read_text())
        created = dt.datetime.fromisoformat(info["created_at"]).astimezone(dt.UTC).replace(tzinfo=None)
        if champion:
            con.execute("UPDATE models SET champion = false WHERE champion")
        con.execute("INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [model_id, info["kind"], created, json.dumps(info["params"], default=float),
                     json.dumps(info["metrics"], default=float), str(self.path(model_id)), champion])


def params_of(bundle: Bundle) -> dict[str, Any]:
    d = dataclasses.asdict(bundle.spec)
    d["trained"] = list(bundle.names)
    d["unavailable"] = bundle.unavailable
    d["n_features"] = len(bundle.feature_names)
    return d
