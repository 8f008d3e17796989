#!/usr/bin/env bash
# Samples per list element against the ceiling (part of `make bench`; alone:
# `scripts/bench-arrays.sh`). For 1, 10, 50 and 500 samples per element (SIZES),
# N samples (default 2 000 000; 10 000 series, the loadgen's type mix) are drained
# by: Redis alone (`loadgen --drain`, RPOP 1000 pipelined: what Redis hands out),
# the C ceiling (scripts/c-ceiling.cpp: hiredis + simdjson On-Demand + a flat table,
# one thread; its CPU from CLOCK_PROCESS_CPUTIME_ID, so waiting for Redis is not counted), and the
# gateway's default pipeline with simdjson (gateway CPU from /proc). ROUNDS rounds (default 2),
# medians. A program, not a test.
N=${N:-2000000}
ROUNDS=${ROUNDS:-2}
SIZES=${SIZES:-1 10 50 500}
source "$(dirname "$0")/bench-env.sh"
"${CXX:-$(command -v c++ || command -v clang++)}" -O2 -std=c++17 "$(dirname "$0")/c-ceiling.cpp" -lhiredis -lsimdjson -o "$BIN/c-ceiling"
SIMD="$BIN/gateway-simdjson"
printf '#!/bin/sh\nMetrics__JsonParser=simdjson exec "%s" "$@"\n' "$G" > "$SIMD"
chmod +x "$SIMD"
echo "| samples per element | Redis hands out | C ceiling | gateway, simdjson | ceiling CPU per sample | gateway CPU per sample | gateway / ceiling |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for size in $SIZES; do
  export SAMPLES_PER_ELEMENT=$size
  rows=()
  for _ in $(seq "$ROUNDS"); do
    fill
    redis=$("$G" loadgen --redis "127.0.0.1:$PORT" --drain | sed -n 's/.*rate=\([0-9]*\).*/\1/p')
    fill
    out=$("$BIN/c-ceiling" 127.0.0.1 "$PORT" "$KEY" "$N")
    read -r ceiling ceilingCPU <<<"$(sed -n 's/.*rate=\([0-9]*\) cpu_us_per_sample=\([0-9.]*\).*/\1 \2/p' <<<"$out")"
    read -r secs cpu _ <<<"$(drain_gateway "$SIMD")"
    rows+=("$redis $ceiling $secs $cpu $ceilingCPU")
  done
  printf '%s\n' "${rows[@]}" | python3 -c "
import statistics, sys
n, size = $N, $size
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
redis = statistics.median(r[0] * size for r in rows)
ceiling = statistics.median(r[1] for r in rows)
rate = statistics.median(n / r[2] for r in rows)
cpu = statistics.median(r[3] / n * 1e6 for r in rows)
ceilingCPU = statistics.median(r[4] for r in rows)
print(f'| {size} | {redis/1e6:.2f} M/s | {ceiling/1e6:.2f} M/s | {rate/1e6:.2f} M/s | {ceilingCPU:.2f} µs | {cpu:.2f} µs | {rate/ceiling:.2f} |')
"
done
