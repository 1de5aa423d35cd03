from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from algobotd.__main__ import main
from algobotd.config import EX_CONFIG
from algobotd.models.gbm import unavailable_reason
from algobotd.models.registry import ModelRegistry

KEYS = {"ic", "rank_ic", "icir", "hit_rate", "mse"}


def test_train_json_on_the_simulated_market(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    rc = main(["train", "--state-dir", str(state), "--symbols", "6", "--bars", "360", "--seed", "4",
               "--models", "lightgbm,hist_gbm,xgboost", "--set", "model.gbm_rounds=30", "--set", "model.folds=2",
               "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    if unavailable_reason("xgboost") is None:
        assert set(out["models"]) == {"lightgbm", "hist_gbm", "xgboost"}
    else:  # listed as unavailable and skipped, never an import error
        assert set(out["models"]) == {"lightgbm", "hist_gbm"} and "not installed" in out["unavailable"]["xgboost"]
    for block in (*out["models"].values(), out["ensemble"], out["baseline"]):
        assert set(block) == KEYS
    assert out["symbols"] == 6 and out["features"] >= 60 and out["samples"] > 0
    reg = ModelRegistry.for_state(state)
    assert reg.champion() == out["model_id"] and (Path(out["path"]) / "bundle.pkl").is_file()
    with duckdb.connect(str(state / "algobot.duckdb"), read_only=True) as con:
        row = con.execute("SELECT kind, champion, metrics FROM models WHERE model_id = ?", [out["model_id"]]).fetchone()
    assert row[0] == "ensemble" and row[1] is True and json.loads(row[2])["ensemble"]["n"] == out["samples"]


def test_train_rejects_unknown_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["train", "--state-dir", str(tmp_path), "--symbols", "3", "--bars", "100", "--models", "nope"])
    assert rc == EX_CONFIG and "--models" in capsys.readouterr().err
