#!/usr/bin/env bash
# What the otlp source costs (a program, not a test): `make bench-otlp`.
#  1. In process, one core: decoding and mapping protobuf exports of 100 delta points
#     against json_decode (simdjson, jansson) on the same samples as JSON elements, both
#     then aggregated; the stream table's RSS per cumulative stream (`bench --otlp`).
#  2. End to end, the default pipeline with Metrics__JsonParser=simdjson and Otlp__Listen:
#     N points posted as exports of 100 over 4 connections (`bench --otlp-load`) against
#     a drain of N samples from Redis, interleaved over ROUNDS rounds (default 3). Gateway
#     CPU from /proc; the senders' CPU is not counted.
set -euo pipefail
N=${N:-200000}
ROUNDS=${ROUNDS:-3}
source "$(dirname "$0")/bench-env.sh"
swift build -c release --product bench >/dev/null
export Metrics__JsonParser=simdjson
echo "# otlp source cost — $(date -u +%F), $(nproc) cores, N=$N, rounds=$ROUNDS"
echo
"$BIN/bench" --otlp 1000
echo
echo "| round | Redis drain k/s | Redis CPU µs/sample | OTLP k points/s | OTLP CPU µs/point | OTLP / Redis CPU per point |"
echo "|---:|---:|---:|---:|---:|---:|"
for round in $(seq "$ROUNDS"); do
  read -r rsecs rcpu _ < <(drain_gateway)
  OTLP=$(free_port)
  Otlp__Listen="127.0.0.1:$OTLP" start_gateway
  until curl -sf "127.0.0.1:$HTTP/ready" >/dev/null; do sleep 0.02; done
  sleep 0.5
  cpu0=$(awk '{print $14+$15}' /proc/$PID/stat)
  read -r osecs ok < <("$BIN/bench" --otlp-load "http://127.0.0.1:$OTLP/v1/metrics" "$((N / 100))" 4)
  cpu1=$(awk '{print $14+$15}' /proc/$PID/stat)
  kill -TERM "$PID"; wait "$PID"; PID=
  [ "$ok" = "$((N / 100))" ] || { echo "only $ok of $((N / 100)) exports answered 200" >&2; exit 1; }
  python3 - "$round" "$N" "$rsecs" "$rcpu" "$osecs" "$(python3 -c "print(($cpu1-$cpu0)/100)")" <<'PY'
import sys
r, n, rs, rc, os_, oc = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:])
print(f"| {r} | {n/rs/1e3:.0f} | {rc/n*1e6:.2f} | {n/os_/1e3:.0f} | {oc/n*1e6:.2f} | {oc/rc:.2f} |")
PY
done
