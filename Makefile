# The two set-up commands: `make demo` and `make test`. Both create .venv when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo daemon test bench clean-state

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# Simulated market + paper broker, no keys, no network: the daemon runs in the background
# and the dashboard attaches to it; quitting the dashboard stops that demo daemon.
demo: $(STAMP)
	@bash scripts/demo.sh

# The daemon alone in the foreground (Ctrl-C stops it cleanly).
daemon: $(STAMP)
	$(BIN)/algobotd run

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python bench/engine.py

clean-state:
	rm -f state/algobot.duckdb state/algobot.duckdb.wal state/algobotd.sock
