#!/usr/bin/env bash
# make demo: start the daemon in the background on the embedded default, attach the
# dashboard, and stop the daemon again when the dashboard quits.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
mkdir -p state
LOG=state/demo-daemon.log
$BIN/algobotd run > "$LOG" 2>&1 &
DAEMON=$!
trap 'kill -TERM $DAEMON 2>/dev/null; wait $DAEMON 2>/dev/null || true' EXIT
if [ -x $BIN/algobot-tui ] && [ -t 1 ]; then
  for _ in $(seq 1 100); do [ -S state/algobotd.sock ] && break; sleep 0.1; done
  $BIN/algobot-tui
else
  echo "algobotd running (pid $DAEMON), log: $LOG; Ctrl-C stops it"
  wait $DAEMON
fi
