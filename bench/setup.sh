#!/usr/bin/env bash
# Prepares the benchmark environment: the peers' venv with Workhorse installed
# into it, and the throwaway PostgreSQL (55432) and Redis (56379) the shared
# harness uses. Idempotent.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
SHARED=${BENCH_SHARED:-$ROOT/../shared/bench}
VENV=${BENCH_VENV:-/tmp/benchvenv}
[ -f "$SHARED/common.py" ] || { echo "shared benchmark harness not found at $SHARED" >&2; exit 1; }
command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server redis-tools; }
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r "$SHARED/requirements-bench.txt"
fi
"$VENV/bin/pip" install -q -e "$ROOT"
bash "$SHARED/services.sh" init >/dev/null
bash "$SHARED/services.sh" start >/dev/null
echo "benchmark environment ready: $VENV"
