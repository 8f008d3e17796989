#!/usr/bin/env bash
# What the remote_write sink costs (a program, not a test): `make bench-remote-write`.
#  1. One round of SERIES (default 100 000) counter series and SERIES/10 histograms:
#     encode and snappy time, requests, bytes before and after compression (`bench --remote-write`).
#  2. The drain of N samples (default 2 000 000) by the default pipeline without and with
#     RemoteWrite__Url (a real Prometheus with --web.enable-remote-write-receiver on a free
#     port, every second), interleaved over ROUNDS rounds (default 3), medians.
set -euo pipefail
N=${N:-2000000}
ROUNDS=${ROUNDS:-3}
SERIES=${SERIES:-100000}
source "$(dirname "$0")/bench-env.sh"
swift build -c release --product bench >/dev/null
echo "# remote write cost — $(date -u +%F), $(nproc) cores, N=$N, rounds=$ROUNDS"
echo
"$BIN/bench" --remote-write "$SERIES"
echo
PROM=$(free_port)
echo "global: {scrape_interval: 15s}" > "$DIR/prometheus.yml"
prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/prom" --web.listen-address="127.0.0.1:$PROM" \
  --web.enable-remote-write-receiver --log.level=error >/dev/null 2>&1 &
PROMPID=$!
trap 'kill $PROMPID 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 100); do curl -sf "127.0.0.1:$PROM/-/ready" >/dev/null && break; sleep 0.1; done
cat > "$DIR/remote" <<SH
#!/bin/sh
RemoteWrite__Url=http://127.0.0.1:$PROM/api/v1/write RemoteWrite__Interval=1s exec $G "\$@"
SH
chmod +x "$DIR/remote"
echo "| round | /metrics only k/s | + remote_write k/s | CPU s per 1M (only, + remote_write) |"
echo "|---:|---:|---:|---:|"
results=()
for r in $(seq 1 "$ROUNDS"); do
  read -r sa ca _ <<<"$(drain_gateway "$G")"
  read -r sb cb _ <<<"$(DRAIN_SINKS=2 drain_gateway "$DIR/remote")"
  results+=("$sa $ca $sb $cb")
  python3 -c "n=$N; print(f'| $r | {n/$sa/1e3:.0f} | {n/$sb/1e3:.0f} | {$ca/(n/1e6):.2f}, {$cb/(n/1e6):.2f} |')"
done
printf '%s\n' "${results[@]}" | python3 -c "
import statistics, sys
n = $N
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
ra = statistics.median(n / r[0] for r in rows); rb = statistics.median(n / r[2] for r in rows)
print(f'\nmedian: /metrics only {ra/1e3:.0f} k/s, with remote_write {rb/1e3:.0f} k/s (ratio {rb/ra:.3f})')
"
