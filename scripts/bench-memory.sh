#!/usr/bin/env bash
# Memory in flight: `make bench-memory`. Drains the same backlog (N samples, default
# 2 000 000, over 10 000 series) sent as 1, 10, 50, 500 and 5 000 samples per list
# element, with the default pipeline (simdjson) and the default memory budget
# (Pipeline__MemoryBudget to change it), all in one run; prints peak RSS, its ratio
# to the one-sample column, rate and its ratio. A program, not a test: it asserts nothing.
N=${N:-2000000}
COLUMNS_SPE=${COLUMNS_SPE:-"1 10 50 500 5000"}
source "$(dirname "$0")/bench-env.sh"
SIMD="$BIN/gateway-simdjson"
printf '#!/bin/sh\nMetrics__JsonParser=simdjson exec "%s" "$@"\n' "$G" > "$SIMD"
chmod +x "$SIMD"
echo "# memory in flight — $(date -u +%F), $(nproc) cores, N=$N, budget ${Pipeline__MemoryBudget:-default}"
echo
echo "| samples per element | peak RSS | × one-sample | rate | × one-sample | CPU s per 1M |"
echo "|---:|---:|---:|---:|---:|---:|"
base_rss= base_rate=
for spe in $COLUMNS_SPE; do
  read -r secs cpu hwm <<<"$(SAMPLES_PER_ELEMENT=$spe drain_gateway "$SIMD")"
  read -r base_rss base_rate line <<<"$(python3 - "$spe" "$secs" "$cpu" "$hwm" "$N" "${base_rss:-0}" "${base_rate:-0}" <<'PY'
import sys
spe, secs, cpu, hwm, n, brss, brate = sys.argv[1], *map(float, sys.argv[2:])
rate = n / secs
brss, brate = (hwm, rate) if brss == 0 else (brss, brate)
print(brss, brate, f"| {spe} | {hwm/1024:.0f} MiB | {hwm/brss:.2f} | {rate/1e6:.2f} M/s | {rate/brate:.2f} | {cpu/(n/1e6):.2f} |")
PY
)"
  echo "$line"
done
