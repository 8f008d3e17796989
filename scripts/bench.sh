#!/usr/bin/env bash
# End-to-end benchmark: `make bench`. Starts its own redis-server on a free port,
# fills N samples (default 2 000 000; mixed types over 10 000 series), measures the
# raw Redis drain rate as the same-run baseline (`gateway loadgen --drain`: RPOP
# 1000, pipelined, discarding), then the release gateway draining the same backlog
# with the default pipeline, and prints rate, ratio to the baseline, CPU seconds per
# million samples and peak RSS. Then the microbenchmarks (.build/release/bench).
# A benchmark is a program: it prints figures and asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000000}
RUNS=${RUNS:-3}
swift build -c release --product gateway >/dev/null
swift build -c release --product bench >/dev/null
BIN=$(swift build -c release --show-bin-path)
G=$BIN/gateway
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HTTP=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR=$(mktemp -d)
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" --daemonize yes --logfile "$DIR/redis.log"
trap 'redis-cli -p $PORT shutdown nosave >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
KEY=prom-stream-gateway:metric-queue

fill() { "$G" loadgen --redis "127.0.0.1:$PORT" --count "$N" --quiet >/dev/null; }

drain_gateway() {
  # Prints: seconds cpu_seconds peak_rss_kb
  env Redis__ConnectionString="127.0.0.1:$PORT" "$G" run --listen "127.0.0.1:$HTTP" --log-level warning &
  local pid=$! start end
  start=$(date +%s.%N)
  until [ "$(redis-cli -p "$PORT" llen $KEY)" = "0" ]; do sleep 0.02; done
  until [ "$(curl -s "127.0.0.1:$HTTP/metrics" | awk '/^prom_stream_gateway_(processed|dropped)_metrics_total/ {s+=$2} END {printf "%d", s}')" -ge "$N" ]; do sleep 0.02; done
  end=$(date +%s.%N)
  local cpu hwm
  cpu=$(awk '{print ($14+$15)/100}' /proc/$pid/stat)
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  kill -TERM $pid; wait $pid
  echo "$(python3 -c "print($end-$start)") $cpu $hwm"
}

echo "# prom-stream-gateway benchmark — $(date -u +%F), $(nproc) cores, $(redis-server --version | awk '{print $3}'), N=$N, runs=$RUNS"
echo
echo "| run | Redis raw drain (baseline) | gateway drain | gateway / baseline | CPU s per 1M samples | peak RSS |"
echo "|---|---:|---:|---:|---:|---:|"
for run in $(seq "$RUNS"); do
  fill
  base=$("$G" loadgen --redis "127.0.0.1:$PORT" --drain | sed -n 's/.*rate=\([0-9]*\).*/\1/p')
  fill
  read -r secs cpu hwm <<<"$(drain_gateway)"
  python3 - "$run" "$base" "$secs" "$cpu" "$hwm" "$N" <<'PY'
import sys
run, base, secs, cpu, hwm, n = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
rate = n / secs
print(f"| {run} | {base/1e3:.0f} k/s | {rate/1e3:.0f} k/s | {rate/base:.3f} | {cpu/(n/1e6):.2f} | {hwm/1024:.0f} MiB |")
PY
done
echo
"$BIN/bench"
