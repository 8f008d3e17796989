#!/usr/bin/env bash
# Interleaved A/B of /metrics render time for two gateway binaries:
# `scripts/bench-render-ab.sh OLD NEW`. One state file of SERIES series (default
# 200 000, the loadgen's type mix) is made once with B; each round starts A, then B,
# on that state file and times ROUNDS_PER (default 5) scrapes of the text page
# (uncompressed), keeping each binary's median. ROUNDS rounds (default 4), then the
# medians. A program, not a test: it prints, asserts nothing.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 gateway-A gateway-B" >&2; exit 2; }
A=$(realpath "$1"); B=$(realpath "$2")
SERIES=${SERIES:-200000}
ROUNDS=${ROUNDS:-4}
N=$((SERIES * 2))
source "$(dirname "$0")/bench-env.sh"
STATE="$DIR/state.bin"
# The state: B drains SERIES × 2 samples over SERIES series, then writes its state file on a clean stop.
"$B" loadgen --redis "127.0.0.1:$PORT" --key "$KEY" --count "$N" --series "$SERIES" --quiet >/dev/null
Metrics__StateFile="$STATE" GATEWAY_BIN="$B" start_gateway
while [ "$(llen)" != 0 ]; do sleep 0.1; done
sleep 1
kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=
scrape() {  # binary → median milliseconds of ROUNDS_PER scrapes
  Metrics__StateFile="$STATE" GATEWAY_BIN="$1" start_gateway
  until curl -sf "127.0.0.1:$HTTP/ready" >/dev/null; do sleep 0.05; done
  curl -s "127.0.0.1:$HTTP/metrics" >/dev/null   # the first scrape builds the render order
  local times=()
  for _ in $(seq "${ROUNDS_PER:-5}"); do
    times+=("$(curl -s -o /dev/null -w '%{time_total}' "127.0.0.1:$HTTP/metrics")")
  done
  kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=
  printf '%s\n' "${times[@]}" | python3 -c "import statistics,sys; print(statistics.median(float(l)*1e3 for l in sys.stdin))"
}
echo "| round | A ms | B ms |"
echo "|---:|---:|---:|"
rows=()
for r in $(seq "$ROUNDS"); do
  a=$(scrape "$A"); b=$(scrape "$B")
  rows+=("$a $b")
  printf '| %s | %.1f | %.1f |\n' "$r" "$a" "$b"
done
printf '%s\n' "${rows[@]}" | python3 -c "
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
a = statistics.median(r[0] for r in rows); b = statistics.median(r[1] for r in rows)
print(f'\nmedian /metrics ($SERIES series, text): A {a:.1f} ms, B {b:.1f} ms (B/A {b/a:.3f})')
"
