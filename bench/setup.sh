#!/usr/bin/env bash
# Prepares the benchmark environment: the peers' venv with Workhorse installed
# into it, the throwaway PostgreSQL (55432) and Redis (56379) the shared
# harness uses, wrk, and the message-queue peers (RabbitMQ, Redis lists) with
# their client venv. Idempotent.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
SHARED=${BENCH_SHARED:-$ROOT/../shared/bench}
VENV=${BENCH_VENV:-/tmp/benchvenv}
[ -f "$SHARED/common.py" ] || { echo "shared benchmark harness not found at $SHARED" >&2; exit 1; }
# Debian packages: Redis for the shared harness; wrk for bench_api.py; RabbitMQ and Redis
# as message-queue peers for bench_queues.py (started privately by ../shared/bench/mq).
missing=()
command -v redis-server >/dev/null || missing+=(redis-server redis-tools)
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r "$SHARED/requirements-bench.txt"
fi
"$VENV/bin/pip" install -q -e "$ROOT"
# The message-queue peers' clients (pika, redis-py) live in the shared mq harness's venv.
MQ_VENV=${BENCH_MQ_VENV:-/tmp/mqbenchvenv}
if [ ! -x "$MQ_VENV/bin/python" ] || ! "$MQ_VENV/bin/python" -c "import pika, redis" 2>/dev/null; then
  python3 -m venv "$MQ_VENV"
  "$MQ_VENV/bin/pip" install -q -r "$SHARED/mq/requirements-mq.txt"
fi
bash "$SHARED/services.sh" init >/dev/null
bash "$SHARED/services.sh" start >/dev/null
echo "benchmark environment ready: $VENV"
