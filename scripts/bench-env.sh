# Sourced by the benchmark scripts: release build, a private redis-server on a free
# loopback port (stopped on exit), and a free HTTP port. Sets G (gateway binary),
# BIN, PORT, HTTP, KEY, DIR. `start_gateway [args…]` runs the gateway in the
# background (PID) and stops it on exit too.
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
  # The gateway first, and wait for it, so that it does not log Redis going away.
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" --daemonize yes --logfile "$DIR/redis.log"
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
llen() { redis-cli -p "$PORT" llen "$KEY"; }
start_gateway() {
  Redis__ConnectionString="127.0.0.1:$PORT" "$G" run --listen "127.0.0.1:$HTTP" --log-level warning "$@" &
  PID=$!
}
