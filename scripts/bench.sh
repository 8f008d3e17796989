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
