#!/usr/bin/env bash
# Interleaved A/B drains of two gateway binaries: `scripts/bench-ab.sh OLD NEW`
# (copy the old release binary aside before rebuilding). Each round drains N samples
# (default 2 000 000; SAMPLES_PER_ELEMENT per list element) with A, then with B, timed as
# `make bench` times them, with each one's peak RSS; ROUNDS
# rounds (default 8), then the medians. Alternating is what makes a before/after
# comparison meaningful on a machine whose speed swings by ±20% from one minute to
# the next. A program, not a test: it prints, asserts nothing.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 gateway-A gateway-B" >&2; exit 2; }
A=$(realpath "$1"); B=$(realpath "$2")
N=${N:-2000000}
ROUNDS=${ROUNDS:-8}
source "$(dirname "$0")/bench-env.sh"
echo "| round | A k/s | B k/s | A CPU s per 1M | B CPU s per 1M | A peak RSS | B peak RSS |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
results=()
for r in $(seq "$ROUNDS"); do
  read -r sa ca ra <<<"$(drain_gateway "$A")"
  read -r sb cb rb <<<"$(drain_gateway "$B")"
  results+=("$sa $ca $sb $cb")
  python3 -c "n=$N; print(f'| $r | {n/$sa/1e3:.0f} | {n/$sb/1e3:.0f} | {$ca/(n/1e6):.2f} | {$cb/(n/1e6):.2f} | {$ra/1024:.0f} MiB | {$rb/1024:.0f} MiB |')"
done
printf '%s\n' "${results[@]}" | python3 -c "
import statistics, sys
n = $N
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
ra = statistics.median(n / r[0] for r in rows); rb = statistics.median(n / r[2] for r in rows)
ca = statistics.median(r[1] / (n / 1e6) for r in rows); cb = statistics.median(r[3] / (n / 1e6) for r in rows)
wins = sum(r[2] < r[0] for r in rows)
print(f'\nmedian: A {ra/1e3:.0f} k/s, B {rb/1e3:.0f} k/s (B/A {rb/ra:.3f}); CPU s per 1M: A {ca:.2f}, B {cb:.2f}; B faster in {wins} of {len(rows)} rounds')
"
