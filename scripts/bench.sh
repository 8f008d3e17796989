#!/usr/bin/env bash
# End-to-end benchmark: `make bench`. Starts its own redis-server on a free port,
# fills N samples (default 2 000 000; mixed types over 10 000 series) and measures,
# in each run, two baselines and then the release gateway draining the backlog with
# the default pipeline (timed from the moment the backlog appears on the queue of the
# running gateway, see drain_gateway):
#   - raw Redis drain (`gateway loadgen --drain`: RPOP 1000, pipelined, discarding);
#   - the jansson ceiling (`bench --jansson-ceiling`: json_loadb + json_decref of the
#     same payloads on every core, nothing else) — the machine's decoding speed at
#     that moment, so the ratio to it survives this box's ±20% speed swings;
#   - a hand-written C consumer (scripts/c-consumer.c: hiredis, pipelined RPOP,
#     jansson, a flat hash table) — how close the pipeline comes to a bare C loop;
# then the gateway with json_decode's parser jansson and with simdjson
# (Metrics__JsonParser=simdjson), one after the other in each run.
# Prints rates, ratios, CPU seconds per million samples and peak RSS; then the
# microbenchmarks (.build/release/bench).
# A benchmark is a program: it prints figures and asserts nothing.
N=${N:-2000000}
RUNS=${RUNS:-3}
source "$(dirname "$0")/bench-env.sh"
swift build -c release --product bench >/dev/null

echo "# prom-stream-gateway benchmark — $(date -u +%F), $(nproc) cores, $(redis-server --version | awk '{print $3}'), N=$N, runs=$RUNS"
echo
cc -O2 "$(dirname "$0")/c-consumer.c" -lhiredis -ljansson -o "$BIN/c-consumer"
SIMD="$BIN/gateway-simdjson"
printf '#!/bin/sh\nMetrics__JsonParser=simdjson exec "%s" "$@"\n' "$G" > "$SIMD"
chmod +x "$SIMD"
echo "| run | Redis raw drain | jansson ceiling | C reference | gateway, jansson | gateway, simdjson | simdjson / jansson | simdjson / ceiling | jansson, simdjson / C | CPU s per 1M (jansson, simdjson) | peak RSS (jansson, simdjson) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for run in $(seq "$RUNS"); do
  fill
  base=$("$G" loadgen --redis "127.0.0.1:$PORT" --drain | sed -n 's/.*rate=\([0-9]*\).*/\1/p')
  ceiling=$("$BIN/bench" --jansson-ceiling 2 | sed -n 's/.*rate=\([0-9]*\).*/\1/p')
  fill
  reference=$("$BIN/c-consumer" 127.0.0.1 "$PORT" "$KEY" "$N" | sed -n 's/.*rate=\([0-9]*\).*/\1/p')
  read -r secs cpu hwm <<<"$(drain_gateway)"
  read -r ssecs scpu shwm <<<"$(drain_gateway "$SIMD")"
  python3 - "$run" "$base" "$ceiling" "$reference" "$secs" "$cpu" "$hwm" "$ssecs" "$scpu" "$shwm" "$N" <<'PY'
import sys
run, base, ceiling, ref, secs, cpu, hwm, ssecs, scpu, shwm, n = sys.argv[1], *map(float, sys.argv[2:11]), int(sys.argv[11])
rate, srate = n / secs, n / ssecs
print(f"| {run} | {base/1e3:.0f} k/s | {ceiling/1e3:.0f} k/s | {ref/1e3:.0f} k/s | {rate/1e3:.0f} k/s | {srate/1e3:.0f} k/s | {srate/rate:.2f} | {srate/ceiling:.2f} | {rate/ref:.2f}, {srate/ref:.2f} | {cpu/(n/1e6):.2f}, {scpu/(n/1e6):.2f} | {hwm/1024:.0f}, {shwm/1024:.0f} MiB |")
PY
done
echo
"$BIN/bench"
echo
echo "## Samples per list element against the ceiling (scripts/bench-arrays.sh)"
echo
N=$N "$(dirname "$0")/bench-arrays.sh"
echo
echo "## Series held, by type (bench --series-memory: 3 labels each, RSS beyond the base after the sink's heap trim, text page render)"
echo
echo "| type | series | RSS per series | text render | page | heap trim |"
echo "|---|---:|---:|---:|---:|---:|"
for t in counter gauge histogram summary; do "$BIN/bench" --series-memory "$t" "${SERIES:-1000000}"; done
echo
echo "## Incremental snapshots (bench --snapshot: what each state-file write writes)"
echo
"$BIN/bench" --snapshot "${SERIES:-1000000}"
