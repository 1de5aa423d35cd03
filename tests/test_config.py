"""Config: typed loading, overrides, and the one-line error with exit status 78."""

from __future__ import annotations

import subprocess

import pytest

from algobotd.config import EX_CONFIG, ConfigError, load, load_credentials
from tests.conftest import ROOT, algobotd_cmd


def test_default_config_loads_with_public_keys() -> None:
    cfg = load()
    assert cfg.feed.kind == "sim" and cfg.broker.kind == "paper"
    assert cfg.feed.sim.symbols == 20 and cfg.feed.bar_seconds == 60
    assert cfg.alpaca.paper is True and cfg.ib.port == 4002 and cfg.control.socket == ""


def test_overrides_are_typed_and_validated() -> None:
    cfg = load(None, ["risk.max_position_pct=0.05", "feed.sim.speed=max", "feed.symbols=[\"AAPL\",\"MSFT\"]"])
    assert cfg.risk.max_position_pct == 0.05
    assert cfg.feed.sim.speed == "max"
    assert cfg.feed.symbols == ["AAPL", "MSFT"]
    assert load(None, [], state_dir="/tmp/x").state.dir == "/tmp/x"


@pytest.mark.parametrize(
    ("override", "path", "fragment"),
    [
        ("risk.max_position_pct=1.5", "risk.max_position_pct", "must be between 0 and 1, got 1.5"),
        ("risk.bogus=1", "risk.bogus", "unknown key"),
        ("nosuchsection.x=1", "nosuchsection", "unknown key"),
        ("feed.bar_seconds=\"60\"", "feed.bar_seconds", "expected int"),
        ("feed.kind=\"kraken\"", "feed.kind", "must be one of"),
        ("feed.sim.speed=-3", "feed.sim.speed", "must be \"max\""),
        ("feed.symbols=[\"aapl\"]", "feed.symbols", "upper-case"),
        ("broker.paper.initial_cash=0", "broker.paper.initial_cash", "must be > 0"),
        ("model.kind=\"sma_cross\"", None, None),
    ],
)
def test_bad_values_name_the_key(override: str, path: str | None, fragment: str | None) -> None:
    if path is None:
        load(None, [override])
        return
    with pytest.raises(ConfigError) as exc:
        load(None, [override])
    assert exc.value.path == path
    assert fragment in exc.value.message


def test_cross_checks() -> None:
    with pytest.raises(ConfigError) as exc:
        load(None, ["model.kind=\"sma_cross\"", "model.fast=40", "model.slow=30"])
    assert exc.value.path == "model.fast"
    with pytest.raises(ConfigError) as exc:
        load(None, ["feed.kind=\"replay\""])
    assert exc.value.path == "feed.replay.path"


def test_bad_toml_file_names_the_file(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[feed\nkind=")
    with pytest.raises(ConfigError) as exc:
        load(bad)
    assert str(bad) in str(exc.value)


@pytest.mark.parametrize("command", ["run", "backtest"])
def test_cli_exits_78_with_one_line(tmp_path, cli_env, command: str) -> None:
    args = [command, "--state-dir", str(tmp_path), "--set", "risk.max_position_pct=1.5"]
    if command == "backtest":
        args += ["--out", str(tmp_path / "r.duckdb")]
    proc = subprocess.run(algobotd_cmd(*args), cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == EX_CONFIG
    lines = proc.stderr.strip().splitlines()
    assert lines == ["config error: risk.max_position_pct: must be between 0 and 1, got 1.5"]
    assert not (tmp_path / "algobot.duckdb").exists()  # nothing started


def test_cli_bad_config_file(tmp_path, cli_env) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[feed]\nbar_seconds = 0\n")
    proc = subprocess.run(algobotd_cmd("run", "--config", str(cfg), "--state-dir", str(tmp_path)), cwd=ROOT,
                          env=cli_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == EX_CONFIG
    assert proc.stderr.strip() == "config error: feed.bar_seconds: must be between 1 and 86400, got 0"


def test_credentials_file_must_be_private(tmp_path) -> None:
    f = tmp_path / "creds"
    f.write_text("APCA_API_KEY_ID=abc\n# comment\nAPCA_API_SECRET_KEY=xyz\n")
    f.chmod(0o644)
    with pytest.raises(ConfigError, match="0600"):
        load_credentials(f)
    f.chmod(0o600)
    assert load_credentials(f) == {"APCA_API_KEY_ID": "abc", "APCA_API_SECRET_KEY": "xyz"}
