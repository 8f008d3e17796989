#!/usr/bin/env bash
# `make run`: the gateway on $LISTEN against the Redis on $REDIS_HOST:$REDIS_PORT; when
# none answers there, a non-persistent redis-server is started as a child of this
# script and stopped when the gateway exits (Ctrl-C, SIGTERM, or a crash).
set -uo pipefail
cd "$(dirname "$0")/.."
LISTEN=${LISTEN:-0.0.0.0:9091}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}
GATEWAY_BIN=${GATEWAY_BIN:-.build/release/gateway}

redis_pid=""
gateway_pid=""
cleanup() {
  [ -n "$gateway_pid" ] && kill -TERM "$gateway_pid" 2>/dev/null && wait "$gateway_pid" 2>/dev/null
  if [ -n "$redis_pid" ]; then
    # SHUTDOWN works even where a parent left SIGTERM blocked; the signal is the fallback.
    redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || kill -TERM "$redis_pid" 2>/dev/null
    wait "$redis_pid" 2>/dev/null
    echo "stopped the redis-server this run started"
  fi
}
trap cleanup EXIT
trap 'exit 0' INT TERM

if redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  echo "using the Redis on $REDIS_HOST:$REDIS_PORT"
else
  echo "starting a local non-persistent redis-server on $REDIS_HOST:$REDIS_PORT (stopped when the gateway exits)"
  redis-server --bind "$REDIS_HOST" --port "$REDIS_PORT" --save '' --appendonly no --logfile /tmp/prom-stream-gateway-redis.log &
  redis_pid=$!
  for _ in $(seq 50); do redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

Redis__ConnectionString=${Redis__ConnectionString:-$REDIS_HOST:$REDIS_PORT} "$GATEWAY_BIN" run --listen "$LISTEN" &
gateway_pid=$!
wait "$gateway_pid"
status=$?
gateway_pid=""
exit $status
