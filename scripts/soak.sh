#!/usr/bin/env bash
# `make soak`: 10 million samples (ROUNDS × 1M) over a fixed set of 10 000 series
# through the release gateway; prints the gateway's RSS after each million. Memory
# must stay flat after warm-up. MIX sets the type mix (percent counter,gauge,
# histogram,summary); CONFIG runs a pipeline file instead of the default one.
# A program, not a test: it prints, asserts nothing.
ROUNDS=${ROUNDS:-10}
source "$(dirname "$0")/bench-env.sh"
start_gateway ${CONFIG:+--config "$CONFIG"}
sleep 1
echo "| samples | series | RSS |"
echo "|---:|---:|---:|"
for r in $(seq "$ROUNDS"); do
  "$G" loadgen --redis "127.0.0.1:$PORT" --count 1000000 --mix "${MIX:-50,20,25,5}" --quiet >/dev/null
  until [ "$(llen)" = "0" ]; do sleep 0.2; done
  sleep 0.5
  series=$(curl -s "127.0.0.1:$HTTP/metrics" | awk '/^prom_stream_gateway_series\{/ {s+=$2} END {print s}')
  echo "| ${r}M | $series | $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$PID/status) |"
done
