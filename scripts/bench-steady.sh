#!/usr/bin/env bash
# `make bench-steady`: the highest push rate the release gateway holds for DURATION
# seconds (default 30) with a bounded backlog. For each rate in RATES, `gateway
# loadgen --rate R --duration D` pushes while LLEN is sampled every second; a rate
# is held when the backlog at the end is below one second's worth of samples.
# A program, not a test: it prints, asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
RATES=${RATES:-"200000 300000 400000 450000 500000"}
DURATION=${DURATION:-30}
swift build -c release --product gateway >/dev/null
G=$(swift build -c release --show-bin-path)/gateway
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HTTP=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR=$(mktemp -d)
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" --daemonize yes --logfile "$DIR/redis.log"
Redis__ConnectionString="127.0.0.1:$PORT" "$G" run --listen "127.0.0.1:$HTTP" --log-level warning &
PID=$!
trap 'kill $PID 2>/dev/null; redis-cli -p $PORT shutdown nosave >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
sleep 1
echo "| push rate | duration | max backlog | backlog at end | held |"
echo "|---:|---:|---:|---:|---|"
best=0
for rate in $RATES; do
  "$G" loadgen --redis "127.0.0.1:$PORT" --rate "$rate" --duration "$DURATION" --quiet >/dev/null &
  LG=$!
  max=0
  while kill -0 $LG 2>/dev/null; do
    n=$(redis-cli -p "$PORT" llen prom-stream-gateway:metric-queue); [ "$n" -gt "$max" ] && max=$n
    sleep 1
  done
  end=$(redis-cli -p "$PORT" llen prom-stream-gateway:metric-queue)
  held=no; [ "$end" -lt "$rate" ] && held=yes && best=$rate
  echo "| $rate/s | ${DURATION}s | $max | $end | $held |"
  until [ "$(redis-cli -p "$PORT" llen prom-stream-gateway:metric-queue)" = "0" ]; do sleep 0.5; done
done
echo
echo "highest rate held for ${DURATION}s with a bounded backlog: $best samples/s"
