#!/usr/bin/env bash
# stop.sh DATA_DIR: stop the LocalStack that start.sh started with this DATA_DIR, and all of its children.
set -euo pipefail

DATA="${1:?usage: stop.sh DATA_DIR}"
PIDFILE="$DATA/localstack.pid"
[[ -f "$PIDFILE" ]] || exit 0
PID="$(cat "$PIDFILE")"

# start.sh ran it with setsid, so its process group id is its pid.
if kill -0 "$PID" 2>/dev/null; then
  kill -TERM -- "-$PID" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$PID" 2>/dev/null || true
fi
rm -f "$PIDFILE"
