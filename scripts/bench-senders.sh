#!/usr/bin/env bash
# The sender's cost: `make bench-senders`. For M = 1, 10, 50, 200, 1 000 measurements
# per invocation, each sender method's wall time per invocation (p50, p99) and its own
# CPU, through a TCP proxy that adds RTT_US (default 500 µs, an in-region round trip)
# in front of a private redis-server and a private Debian prometheus-pushgateway.
# Methods: LPUSH per measurement (PHP and Python), the client libraries (clients/php,
# clients/python: one LPUSH per invocation), and pre-aggregate + render + POST to the
# Pushgateway (PHP, curl). PHP runs with opcache, as on Lambda (PHP_OPCACHE=0: without).
# Writes docs/senders.csv and docs/senders.svg (OUT to change)
# and prints a table; Redis LPUSH commands per invocation come from INFO commandstats.
# A program, not a test: it asserts nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RTT_US=${RTT_US:-500}
MS=${MS:-"1 10 50 200 1000"}
MAX_INVOCATIONS=${MAX_INVOCATIONS:-2000}
MAX_SECONDS=${MAX_SECONDS:-3}
OUT=${OUT:-docs}
# PHP runs with opcache, as on Lambda (Bref enables it for its CLI runtimes); PHP_OPCACHE=0 runs without.
PHP_OPCACHE=${PHP_OPCACHE:-1}
PHP=(php)
if [ "$PHP_OPCACHE" = 1 ]; then
  PHP+=(-d opcache.enable_cli=1)
  opcache() { "${PHP[@]}" -r 'exit(is_array(opcache_get_status()) ? 0 : 1);' 2>/dev/null; }
  # php-opcache is a virtual package (php8.2-opcache on Debian 12), so the Makefile's dpkg check cannot list it.
  opcache || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends php-opcache >/dev/null 2>&1 || true
  opcache || { echo "opcache does not load (apt-get install php-opcache), or run with PHP_OPCACHE=0"; exit 1; }
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DIR=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  redis-cli -p "$REDIS" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
REDIS=$(free_port) PGW=$(free_port) REDIS_PROXY=$(free_port) PGW_PROXY=$(free_port)
cc -O2 -o "$DIR/delay-proxy" scripts/senders/delay-proxy.c
redis-server --port "$REDIS" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" --daemonize yes --logfile "$DIR/redis.log"
prometheus-pushgateway --web.listen-address="127.0.0.1:$PGW" --log.level=warn >"$DIR/pgw.log" 2>&1 &
PIDS+=($!)
"$DIR/delay-proxy" "$REDIS_PROXY" "$REDIS" "$RTT_US" & PIDS+=($!)
"$DIR/delay-proxy" "$PGW_PROXY" "$PGW" "$RTT_US" & PIDS+=($!)
for _ in $(seq 50); do
  redis-cli -p "$REDIS_PROXY" ping >/dev/null 2>&1 && curl -sf "127.0.0.1:$PGW_PROXY/-/ready" >/dev/null && break
  sleep 0.1
done
lpushes() { redis-cli -p "$REDIS" info commandstats | tr -d '\r' | sed -n 's/^cmdstat_lpush:calls=\([0-9]*\),.*/\1/p' | sed 's/^$/0/'; }
measured_rtt=$(python3 - "$REDIS_PROXY" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
best = []
for _ in range(200):
    t = time.perf_counter(); s.sendall(b"PING\r\n"); s.recv(64); best.append(time.perf_counter() - t)
print(f"{sorted(best)[100] * 1e6:.0f}")
PY
)
mkdir -p "$OUT"
CSV="$OUT/senders.csv"
echo "language,method,m,rtt_us,invocations,wall_p50_us,wall_p99_us,cpu_us,cpu_us_per_measurement,lpush_per_invocation" > "$CSV"
echo "# sender cost — $(date -u +%F), $(nproc) cores, PHP $(php -r 'echo PHP_VERSION;') (opcache: $PHP_OPCACHE), $(python3 -V)," \
  "added round trip ${RTT_US} µs" \
  "(PING through the proxy: ${measured_rtt} µs p50)"
echo
echo "| M | method | wall p50 | wall p99 | CPU / invocation | CPU / measurement | LPUSH / invocation |"
echo "|---:|---|---:|---:|---:|---:|---:|"
for m in $MS; do
  for run in "php lpush-each" "php library" "php pushgateway" "python lpush-each" "python library"; do
    read -r language method <<<"$run"
    before=$(lpushes)
    if [ "$language" = php ]; then
      line=$("${PHP[@]}" scripts/senders/sender.php "$method" "$m" "$MAX_INVOCATIONS" "$MAX_SECONDS" "$REDIS_PROXY" "$PGW_PROXY")
    else
      line=$(python3 scripts/senders/sender.py "$method" "$m" "$MAX_INVOCATIONS" "$MAX_SECONDS" "$REDIS_PROXY")
    fi
    after=$(lpushes)
    redis-cli -p "$REDIS" del prom-stream-gateway:metric-queue >/dev/null
    read -r n p50 p99 cpu <<<"$line"
    python3 - "$language" "$method" "$m" "$RTT_US" "$n" "$p50" "$p99" "$cpu" "$((after - before))" "$CSV" <<'PY'
import sys
language, method, m, rtt, n, p50, p99, cpu, pushes, csv = sys.argv[1:]
m, n, p50, p99, cpu, pushes = int(m), int(n), float(p50), float(p99), float(cpu), int(pushes)
per = pushes / (n + 20)  # 20 warm-up invocations
open(csv, "a").write(f"{language},{method},{m},{rtt},{n},{p50},{p99},{cpu},{cpu / m:.3f},{per:.2f}\n")
fmt = lambda us: f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"
print(f"| {m} | {language} {method} | {fmt(p50)} | {fmt(p99)} | {fmt(cpu)} | {cpu / m:.2f} µs | {per:g} |")
PY
  done
done
python3 scripts/senders/plot.py "$CSV" "$OUT/senders.svg"
echo
python3 - "$CSV" <<'PY'
import csv, sys
rows = {(r["language"], r["method"], int(r["m"])): r for r in csv.DictReader(open(sys.argv[1]))}
ms = sorted({m for _, _, m in rows})
print("| M | PHP library ÷ Pushgateway (wall p50) | PHP library ÷ LPUSH per measurement | PHP library CPU / measurement |")
print("|---:|---:|---:|---:|")
for m in ms:
    lib, pgw, each = rows[("php", "library", m)], rows[("php", "pushgateway", m)], rows[("php", "lpush-each", m)]
    print(f"| {m} | {float(lib['wall_p50_us']) / float(pgw['wall_p50_us']):.2f} | "
          f"{float(lib['wall_p50_us']) / float(each['wall_p50_us']):.3f} | {float(lib['cpu_us_per_measurement']):.2f} µs |")
PY
echo
echo "wrote $CSV and $OUT/senders.svg"
