#!/usr/bin/env bash
# `make bench-tls`: the drain over TLS against the same gateway over plain TCP, to one
# redis-server listening both ways, interleaved: ROUNDS rounds (default 6) of N
# samples (default 2 000 000) plain then TLS, then the medians and their ratio.
# A program, not a test: it prints, asserts nothing.
set -euo pipefail
N=${N:-2000000}
ROUNDS=${ROUNDS:-6}
BENCH_TLS=1
source "$(dirname "$0")/bench-env.sh"
echo "| round | plain k/s | TLS k/s | plain CPU s per 1M | TLS CPU s per 1M |"
echo "|---:|---:|---:|---:|---:|"
# The CA goes to the TLS gateway only: `fill`'s loadgen reads Redis__Tls* too, and refuses
# TLS settings for its plain URL.
printf '#!/bin/sh\nRedis__TlsCaFile="%s" exec "%s" "$@"\n' "$DIR/ca.crt" "$G" > "$DIR/gateway-tls"
chmod +x "$DIR/gateway-tls"
results=()
for r in $(seq "$ROUNDS"); do
  read -r sp cp _ <<<"$(REDIS_URL="127.0.0.1:$PORT" drain_gateway)"
  read -r st ct _ <<<"$(REDIS_URL="localhost:$TLSPORT,ssl=true" drain_gateway "$DIR/gateway-tls")"
  results+=("$sp $cp $st $ct")
  python3 -c "n=$N; print(f'| $r | {n/$sp/1e3:.0f} | {n/$st/1e3:.0f} | {$cp/(n/1e6):.2f} | {$ct/(n/1e6):.2f} |')"
done
printf '%s\n' "${results[@]}" | python3 -c "
import statistics, sys
n = $N
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
rp = statistics.median(n / r[0] for r in rows); rt = statistics.median(n / r[2] for r in rows)
cp = statistics.median(r[1] / (n / 1e6) for r in rows); ct = statistics.median(r[3] / (n / 1e6) for r in rows)
print(f'\nmedian: plain {rp/1e3:.0f} k/s, TLS {rt/1e3:.0f} k/s (TLS/plain {rt/rp:.3f}); CPU s per 1M: plain {cp:.2f}, TLS {ct:.2f}')
"
