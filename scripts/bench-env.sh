# Sourced by the benchmark scripts: release build, a private redis-server on a free
# loopback port (stopped on exit), and a free HTTP port. Sets G (gateway binary),
# BIN, PORT, HTTP, KEY, DIR. `start_gateway [args…]` runs the gateway (GATEWAY_BIN,
# default G) in the background (PID) and stops it on exit too; `fill [key]` pushes N
# samples; `drain_gateway [binary]` times a drain of them. With BENCH_TLS=1 the
# redis-server also listens with TLS on TLSPORT (certificates in DIR: ca.crt), and
# REDIS_URL chooses what the gateway connects to.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
swift build -c release --product gateway >/dev/null
BIN=$(swift build -c release --show-bin-path)
G=$BIN/gateway
PORT=$(free_port)
HTTP=$(free_port)
KEY=prom-stream-gateway:metric-queue
DIR=$(mktemp -d)
PID=
cleanup() {
  # The gateways first, and wait for them, so that they do not log Redis going away. Every
  # gateway started is listed in $DIR/gateways: one started inside `$(drain_gateway)` — a
  # subshell, which runs no EXIT trap — is stopped here too when that subshell failed.
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  if [ -f "$DIR/gateways" ]; then
    # Only a process that is still a gateway run from this $DIR's ports: a PID may be reused.
    ours() { { tr '\0' ' ' < "/proc/$1/cmdline"; } 2>/dev/null | grep -q -- "run --listen 127.0.0.1:$HTTP"; }
    while read -r p; do if ours "$p"; then kill "$p" 2>/dev/null || true; fi; done < "$DIR/gateways"
    while read -r p; do for _ in $(seq 200); do ours "$p" || break; sleep 0.05; done; done < "$DIR/gateways"
  fi
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
tls_args=()
if [ "${BENCH_TLS:-0}" = 1 ]; then
  TLSPORT=$(free_port)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$DIR/ca.key" -out "$DIR/ca.crt" -days 2 -subj "/CN=bench CA" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$DIR/server.key" -out "$DIR/server.csr" -subj "/CN=localhost" 2>/dev/null
  echo "subjectAltName=DNS:localhost,IP:127.0.0.1" > "$DIR/san.ext"
  openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial -out "$DIR/server.crt" -days 2 -extfile "$DIR/san.ext" 2>/dev/null
  tls_args=(--tls-port "$TLSPORT" --tls-cert-file "$DIR/server.crt" --tls-key-file "$DIR/server.key" --tls-ca-cert-file "$DIR/ca.crt" --tls-auth-clients no)
fi
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" --daemonize yes --logfile "$DIR/redis.log" "${tls_args[@]}"
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
llen() { redis-cli -p "$PORT" llen "$KEY"; }
start_gateway() {
  Redis__ConnectionString="${REDIS_URL:-127.0.0.1:$PORT}" "${GATEWAY_BIN:-$G}" run --listen "127.0.0.1:$HTTP" --log-level warning "$@" &
  PID=$!
  echo "$PID" >> "$DIR/gateways"
}

fill() { "$G" loadgen --redis "127.0.0.1:$PORT" --key "${1:-$KEY}" --count "$N" --batch "${SAMPLES_PER_ELEMENT:-1}" --quiet >/dev/null; }

drain_gateway() {
  # Drains N samples with the gateway binary $1 (default: this tree's release build).
  # The backlog appears while the gateway runs, as after an outage of the gateway:
  # it is filled under another key, the gateway is started and waits (BLMPOP) on the
  # empty queue, then one RENAME puts all N elements on the queue key. Timed from the
  # RENAME until the gateway's own counters show N processed or dropped; process
  # start-up is not part of a drain. LLEN is polled while the backlog lasts, not
  # /metrics: 100 scrapes a second would make the sink copy its series after each
  # one, which no Prometheus does. Prints: seconds cpu_seconds peak_rss_kb
  fill "$KEY:staging"
  GATEWAY_BIN=${1:-$G} start_gateway
  local pid=$PID secs cpu0 cpu1 hwm
  until curl -sf "127.0.0.1:$HTTP/ready" >/dev/null; do
    kill -0 "$pid" 2>/dev/null || { echo "the gateway exited before it was ready" >&2; exit 1; }
    sleep 0.02
  done
  sleep 0.5
  cpu0=$(awk '{print $14+$15}' /proc/$pid/stat)
  # Each sink counts what it processed: with DRAIN_SINKS sinks, N samples count DRAIN_SINKS × N.
  secs=$(python3 - "$PORT" "$KEY" "$HTTP" "$((N * ${DRAIN_SINKS:-1}))" <<'PY'
# One process and one connection for the whole wait: spawning redis-cli or curl every
# few milliseconds would take CPU from the gateway it measures.
import socket, sys, time, urllib.request
port, key, http, n = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3], int(sys.argv[4])
r = socket.create_connection(("127.0.0.1", port))
def command(*args):
    r.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    return r.recv(4096)
def processed():
    text = urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics").read().decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith(("prom_stream_gateway_processed_metrics_total", "prom_stream_gateway_dropped_metrics_total")))
start = time.monotonic()
command(b"RENAME", key + b":staging", key)
while command(b"LLEN", key) != b":0\r\n":
    time.sleep(0.01)
while processed() < n:
    time.sleep(0.01)
print(time.monotonic() - start)
PY
)
  cpu1=$(awk '{print $14+$15}' /proc/$pid/stat)
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  kill -TERM $pid; wait $pid; PID=
  echo "$secs $(python3 -c "print(($cpu1-$cpu0)/100)") $hwm"
}
