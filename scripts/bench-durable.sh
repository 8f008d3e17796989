#!/usr/bin/env bash
# What durability costs (a program, not a test): interleaved drains of N samples
# (default 2 000 000) by the default pipeline without and with Metrics__StateFile
# (reliable pops + snapshots every 5 s), ROUNDS rounds (default 4), medians; then a
# state of SERIES (default 1 000 000) counter series: snapshot write time, capture
# time (ingestion waits that long), file size, and the restart time to ready.
set -euo pipefail
N=${N:-2000000}
ROUNDS=${ROUNDS:-4}
SERIES=${SERIES:-1000000}
source "$(dirname "$0")/bench-env.sh"
cat > "$DIR/durable" <<SH
#!/bin/sh
Metrics__StateFile=$DIR/state Gateway__Instance=bench ${DURABLE_ENV:-} exec $G "\$@"
SH
chmod +x "$DIR/durable"
echo "| round | plain k/s | durable k/s | plain CPU s per 1M | durable CPU s per 1M |"
echo "|---:|---:|---:|---:|---:|"
results=()
[ "$ROUNDS" -gt 0 ] || echo "| (no drain rounds) | | | | |"
for r in $(seq 1 "$ROUNDS"); do
  read -r sa ca _ <<<"$(drain_gateway "$G")"
  rm -f "$DIR/state"; redis-cli -p "$PORT" del "$KEY:processing:bench" "$KEY:processing:bench:acked" >/dev/null
  read -r sb cb _ <<<"$(drain_gateway "$DIR/durable")"
  results+=("$sa $ca $sb $cb")
  python3 -c "n=$N; print(f'| $r | {n/$sa/1e3:.0f} | {n/$sb/1e3:.0f} | {$ca/(n/1e6):.2f} | {$cb/(n/1e6):.2f} |')"
done
[ "$ROUNDS" -gt 0 ] && printf '%s\n' "${results[@]}" | python3 -c "
import statistics, sys
n = $N
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
ra = statistics.median(n / r[0] for r in rows); rb = statistics.median(n / r[2] for r in rows)
print(f'\nmedian: plain {ra/1e3:.0f} k/s, durable {rb/1e3:.0f} k/s (durable/plain {rb/ra:.3f})')
"

# A large state: SERIES distinct counter series.
rm -f "$DIR/state"; redis-cli -p "$PORT" flushall >/dev/null
python3 - "$PORT" "$KEY" "$SERIES" <<'PY'
# SERIES distinct counter series (loadgen's payloads repeat after ~50 000 series).
import socket, sys
port, key, n = int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3])
r = socket.create_connection(("127.0.0.1", port))
def lpush(values):
    parts = [b"LPUSH", key] + values
    r.sendall(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
sent = 0
for start in range(0, n, 1000):
    lpush([b'{"type":"counter","name":"big_total","value":1,"labels":{"series":"%d","app":"bench"}}' % i for i in range(start, min(n, start + 1000))])
    sent += 1
buf = b""
while buf.count(b"\r\n") < sent:
    buf += r.recv(65536)
PY
GATEWAY_BIN="$DIR/durable" start_gateway
until [ "$(redis-cli -p "$PORT" llen "$KEY")" = 0 ] && [ "$(redis-cli -p "$PORT" llen "$KEY:processing:bench")" = 0 ]; do sleep 0.5; done
page=$(curl -s "127.0.0.1:$HTTP/metrics")
metric() { echo "$page" | awk -v m="$1" '$1 == m {print $2}'; }
echo
echo "state of $(metric 'prom_stream_gateway_series{type="counter"}') counter series: write $(metric prom_stream_gateway_snapshot_seconds) s (of which $(metric prom_stream_gateway_snapshot_capture_seconds) s holding the apply lock), $(metric prom_stream_gateway_snapshot_bytes) bytes"
kill -TERM "$PID"; wait "$PID"; PID=
start=$(date +%s.%N)
GATEWAY_BIN="$DIR/durable" start_gateway
until curl -sf "127.0.0.1:$HTTP/" >/dev/null; do sleep 0.01; done
end=$(date +%s.%N)
echo "restart to serving with that state: $(python3 -c "print(f'{$end-$start:.2f}')") s; RSS $(awk '/VmRSS/ {print $2}' /proc/$PID/status) kB"
