#!/usr/bin/env bash
# End-to-end benchmark: `make bench`. Starts its own redis-server on a free port,
# fills N samples (default 2 000 000; mixed types over 10 000 series) and measures,
# in each run, two baselines and then the release gateway draining the backlog with
# the default pipeline (timed from the moment the backlog appears on the queue of the
# running gateway, see drain_gateway):
#   - raw Redis drain (`gateway loadgen --drain`: RPOP 1000, pipelined, discarding);
#   - the jansson ceiling (`bench --jansson-ceiling`: json_loadb + json_decref of the
#     same payloads on every core, nothing else) — the machine's decoding speed at
#     that moment, so the ratio to it survives this box's ±20% speed swings.
# Prints rates, ratios, CPU seconds per million samples and peak RSS; then the
# microbenchmarks (.build/release/bench).
# A benchmark is a program: it prints figures and asserts nothing.
N=${N:-2000000}
RUNS=${RUNS:-3}
source "$(dirname "$0")/bench-env.sh"
swift build -c release --product bench >/dev/null

fill() { "$G" loadgen --redis "127.0.0.1:$PORT" --key "${1:-$KEY}" --count "$N" --quiet >/dev/null; }

drain_gateway() {
  # The backlog appears while the gateway runs, as after an outage of the gateway:
  # it is filled under another key, the gateway is started and waits (BLMPOP) on the
  # empty queue, then one RENAME puts all N elements on the queue key. Timed from the
  # RENAME until the gateway's own counters show N processed or dropped; process
  # start-up is not part of a drain. LLEN is polled while the backlog lasts, not
  # /metrics: 100 scrapes a second would make the sink copy its series after each
  # one, which no Prometheus does. Prints: seconds cpu_seconds peak_rss_kb
  fill "$KEY:staging"
  start_gateway
  local pid=$PID secs cpu0 cpu1 hwm
  until curl -sf "127.0.0.1:$HTTP/ready" >/dev/null; do sleep 0.02; done
  sleep 0.5
  cpu0=$(awk '{print $14+$15}' /proc/$pid/stat)
  secs=$(python3 - "$PORT" "$KEY" "$HTTP" "$N" <<'PY'
# One process and one connection for the whole wait: spawning redis-cli or curl every
# few milliseconds would take CPU from the gateway it measures.
import socket, sys, time, urllib.request
port, key, http, n = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3], int(sys.argv[4])
r = socket.create_connection(("127.0.0.1", port))
def command(*args):
    r.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    return r.recv(4096)
def processed():
    text = urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics").read().decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith(("prom_stream_gateway_processed_metrics_total", "prom_stream_gateway_dropped_metrics_total")))
start = time.monotonic()
command(b"RENAME", key + b":staging", key)
while command(b"LLEN", key) != b":0\r\n":
    time.sleep(0.01)
while processed() < n:
    time.sleep(0.01)
print(time.monotonic() - start)
PY
)
  cpu1=$(awk '{print $14+$15}' /proc/$pid/stat)
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  kill -TERM $pid; wait $pid; PID=
  echo "$secs $(python3 -c "print(($cpu1-$cpu0)/100)") $hwm"
}

echo "# prom-stream-gateway benchmark — $(date -u +%F), $(nproc) cores, $(redis-server --version | awk '{print $3}'), N=$N, runs=$RUNS"
echo
echo "| run | Redis raw drain | jansson ceiling | gateway drain | gateway / Redis | gateway / jansson | CPU s per 1M samples | peak RSS |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for run in $(seq "$RUNS"); do
  fill
  base=$("$G" loadgen --redis "127.0.0.1:$PORT" --drain | sed -n 's/.*rate=\([0-9]*\).*/\1/p')
  ceiling=$("$BIN/bench" --jansson-ceiling 2 | sed -n 's/.*rate=\([0-9]*\).*/\1/p')
  read -r secs cpu hwm <<<"$(drain_gateway)"
  python3 - "$run" "$base" "$ceiling" "$secs" "$cpu" "$hwm" "$N" <<'PY'
import sys
run, base, ceiling, secs, cpu, hwm, n = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
rate = n / secs
print(f"| {run} | {base/1e3:.0f} k/s | {ceiling/1e3:.0f} k/s | {rate/1e3:.0f} k/s | {rate/base:.3f} | {rate/ceiling:.2f} | {cpu/(n/1e6):.2f} | {hwm/1024:.0f} MiB |")
PY
done
echo
"$BIN/bench"
