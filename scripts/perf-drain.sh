#!/usr/bin/env bash
# Where a drain's CPU goes: `scripts/perf-drain.sh [jansson|simdjson]` records the
# release gateway with perf while it drains N samples (default 2 000 000) and prints
# the share of samples per library and the top functions. PERF_EVENT=page-faults
# samples minor faults instead of CPU time (its event count is the faults, about);
# GATEWAY_BIN profiles another binary (a copy of an older build), PERF_KEEP=FILE keeps perf.data.
# A program, not a test.
PARSER=${1:-simdjson}
source "$(dirname "$0")/bench-env.sh"
fill "$KEY:staging"
Metrics__JsonParser=$PARSER GATEWAY_BIN="${GATEWAY_BIN:-$G}" start_gateway
until curl -sf "127.0.0.1:$HTTP/ready" >/dev/null; do sleep 0.05; done
perf record ${PERF_EVENT:+-e "$PERF_EVENT"} -F 999 -g -p "$PID" -o "$DIR/perf.data" 2>/dev/null &
PERF=$!
sleep 0.5
redis-cli -p "$PORT" rename "$KEY:staging" "$KEY" >/dev/null
while [ "$(llen)" != 0 ]; do sleep 0.05; done
sleep 0.3
kill -INT "$PERF"; wait "$PERF" 2>/dev/null || true
perf report -i "$DIR/perf.data" --stdio 2>/dev/null | grep -E '^# Event count' || true
echo "## parser: $PARSER — share of ${PERF_EVENT:-CPU} samples by library"
perf report -i "$DIR/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -8 || true
echo "## top functions"
perf report -i "$DIR/perf.data" --no-children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -14 || true
echo "## top kernel functions"
perf report -i "$DIR/perf.data" --no-children --sort symbol --stdio 2>/dev/null | grep -E "^ +[0-9].*\[k\]" | head -12 || true
[ -n "${PERF_KEEP:-}" ] && cp "$DIR/perf.data" "$PERF_KEEP"
echo "## by thread"
perf report -i "$DIR/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep -E "^ +[0-9]" | head -10 || true
