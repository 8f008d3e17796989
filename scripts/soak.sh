#!/usr/bin/env bash
# `make soak`: 10 million samples (ROUNDS × 1M) over a fixed set of 10 000 series
# through the release gateway; prints the gateway's RSS after each million. Memory
# must stay flat after warm-up. MIX sets the type mix (percent counter,gauge,
# histogram,summary); CONFIG runs a pipeline file instead of the default one.
# A program, not a test: it prints, asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-10}
swift build -c release --product gateway >/dev/null
G=$(swift build -c release --show-bin-path)/gateway
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HTTP=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR=$(mktemp -d)
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" --daemonize yes --logfile "$DIR/redis.log"
Redis__ConnectionString="127.0.0.1:$PORT" "$G" run --listen "127.0.0.1:$HTTP" --log-level warning ${CONFIG:+--config "$CONFIG"} &
PID=$!
trap 'kill $PID 2>/dev/null; redis-cli -p $PORT shutdown nosave >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
sleep 1
echo "| samples | series | RSS |"
echo "|---:|---:|---:|"
for r in $(seq "$ROUNDS"); do
  "$G" loadgen --redis "127.0.0.1:$PORT" --count 1000000 --mix "${MIX:-50,20,25,5}" --quiet >/dev/null
  until [ "$(redis-cli -p "$PORT" llen prom-stream-gateway:metric-queue)" = "0" ]; do sleep 0.2; done
  sleep 0.5
  series=$(curl -s "127.0.0.1:$HTTP/metrics" | awk '/^prom_stream_gateway_series\{/ {s+=$2} END {print s}')
  echo "| ${r}M | $series | $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$PID/status) |"
done
