"""Where the live store lives, and the rule for result files (kept light: backtests import it)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from algobotd.config import Config, ConfigError

STORE_FILE = "algobot.duckdb"


def store_path(cfg: Config) -> Path:
    return cfg.state_dir / STORE_FILE


def prepare_result_file(cfg: Config, out: Path, kind: str) -> None:
    """Refuse the live store; replace an existing file only when it holds ``kind`` runs only
    (a typo in --out must not destroy something else)."""
    out = out.resolve()
    if out == store_path(cfg).resolve():
        raise ConfigError("--out", f"{out} is the live store; {kind} runs write to their own file")
    if out.exists():
        try:
            with duckdb.connect(str(out), read_only=True) as con:
                kinds = {r[0] for r in con.execute("SELECT DISTINCT kind FROM runs").fetchall()}
        except duckdb.Error:
            raise ConfigError("--out", f"{out} exists and is not a result file; refusing to overwrite") from None
        if kinds - {kind}:
            raise ConfigError("--out", f"{out} holds {sorted(kinds)} runs, not {kind}; refusing to overwrite")
        out.unlink()
        Path(str(out) + ".wal").unlink(missing_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
