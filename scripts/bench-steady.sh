#!/usr/bin/env bash
# `make bench-steady`: the highest push rate the release gateway holds for DURATION
# seconds (default 30) with a bounded backlog. For each rate in RATES, `gateway
# loadgen --rate R --duration D` pushes while LLEN is sampled every second; a rate
# is held when the backlog at the end is below one second's worth of samples.
# A program, not a test: it prints, asserts nothing.
RATES=${RATES:-"200000 300000 400000 450000 500000"}
DURATION=${DURATION:-30}
source "$(dirname "$0")/bench-env.sh"
start_gateway
sleep 1
echo "| push rate | duration | max backlog | backlog at end | held |"
echo "|---:|---:|---:|---:|---|"
best=0
for rate in $RATES; do
  "$G" loadgen --redis "127.0.0.1:$PORT" --rate "$rate" --duration "$DURATION" --quiet >/dev/null &
  LG=$!
  max=0
  while kill -0 $LG 2>/dev/null; do
    n=$(llen); [ "$n" -gt "$max" ] && max=$n
    sleep 1
  done
  end=$(llen)
  held=no; [ "$end" -lt "$rate" ] && held=yes && best=$rate
  echo "| $rate/s | ${DURATION}s | $max | $end | $held |"
  until [ "$(llen)" = "0" ]; do sleep 0.5; done
done
echo
echo "highest rate held for ${DURATION}s with a bounded backlog: $best samples/s"
