#!/usr/bin/env bash
# Sharded drain (group mode, pipelines/group.yaml) on one redis-server vs a three-master
# Redis Cluster on this box, with 1 and 2 gateways, in interleaved rounds; then the
# time to load a 100 000-series shard state. Prints one line per run:
#   target gateways samples seconds rate cpu_us_per_sample
# `seconds` runs from the backlog appearing (the gateways already own every shard) to
# the last sample processed; cpu is every gateway's user+system time over that span.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${N:-400000}
ROUNDS=${ROUNDS:-3}
SHARDS=8
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# A cluster node also listens on port + 10000 (the cluster bus): keep both valid.
cluster_port() { local p; while p=$(free_port); [ "$p" -gt 55000 ]; do :; done; echo "$p"; }
swift build -c release --product gateway >/dev/null
G=$(swift build -c release --show-bin-path)/gateway
DIR=$(mktemp -d)
GW=()
PORTS=()
cleanup() {
  # Waited for with stderr closed: bash would report each gateway "Killed", as if something failed.
  for p in "${GW[@]:-}"; do [ -n "$p" ] && { kill -9 "$p" && wait "$p"; } 2>/dev/null || true; done
  for p in "${PORTS[@]:-}"; do [ -n "$p" ] && redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT
redis() {   # port [args…]
  local port=$1; shift
  mkdir -p "$DIR/$port"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR/$port" --daemonize yes --logfile "$DIR/$port/log" "$@"
  PORTS+=("$port")
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.1; done
}
SINGLE=$(free_port); redis "$SINGLE"
C=(); for _ in 1 2 3; do p=$(cluster_port); redis "$p" --cluster-enabled yes --cluster-config-file nodes.conf; C+=("$p"); done
redis-cli --cluster create $(for p in "${C[@]}"; do echo "127.0.0.1:$p"; done) --cluster-replicas 0 --cluster-yes >/dev/null 2>&1
until redis-cli -p "${C[0]}" cluster info | grep -q cluster_state:ok; do sleep 0.1; done
CLUSTER=$(for p in "${C[@]}"; do printf '127.0.0.1:%s,' "$p"; done); CLUSTER=${CLUSTER%,}

start() {   # url key instance shards -> http port in $HTTP, pid appended to GW
  HTTP=$(free_port)
  REDIS_URL=$1 QUEUE_KEY=$2 INSTANCE=$3 SHARDS=$4 LEASE_TTL=2s SNAPSHOT_INTERVAL=1s \
    "$G" run --config pipelines/group.yaml --listen "127.0.0.1:$HTTP" --log-level warning &
  GW+=($!)
}

run() {   # label url gateways redis-port
  # Filled under staging keys in the shards' slots; once the gateways own every shard,
  # one RENAME per shard puts the backlog on the queue — timed from there.
  local key="bench:$RANDOM$RANDOM" ports=() pids=()
  "$G" loadgen --redis "$2" --key "$key-staging" --count "$N" --shards $SHARDS --quiet >/dev/null
  for i in $(seq "$3"); do start "$2" "$key" "gw$i" $SHARDS; ports+=("$HTTP"); pids+=("${GW[-1]}"); done
  python3 - "$1" "$3" "$N" "${ports[*]}" "${pids[*]}" "$4" "$key" $SHARDS <<'PY'
import subprocess, sys, time, urllib.request
label, k, n, ports, pids, rport, key, shards = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(), sys.argv[5].split(), sys.argv[6], sys.argv[7], int(sys.argv[8])
def lines():
    for p in ports:
        try: yield from urllib.request.urlopen(f"http://127.0.0.1:{p}/metrics", timeout=2).read().decode().splitlines()
        except OSError: pass
def total(prefixes): return sum(float(l.rsplit(" ", 1)[1]) for l in lines() if l.startswith(prefixes))
def cpu():
    return sum(sum(int(x) for x in open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[11:13]) for p in pids) / 100
while total(("prom_stream_gateway_shards_owned",)) < shards: time.sleep(0.05)
time.sleep(1)   # membership settled (a second gateway's rebalance)
t0, c0 = time.monotonic(), cpu()
for s in range(shards):
    subprocess.run(["redis-cli", "-c", "-p", rport, "RENAME", f"{key}-staging:{{{s}}}", f"{key}:{{{s}}}"], check=True, stdout=subprocess.DEVNULL)
while total(("prom_stream_gateway_processed_metrics_total", "prom_stream_gateway_dropped_metrics_total")) < n: time.sleep(0.02)
t1, c1 = time.monotonic(), cpu()
s = t1 - t0
print(f"{label} {k} {n} {s:.3f} {int(n / s)} {(c1 - c0) / n * 1e6:.2f}", flush=True)
PY
  for p in "${pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
}

echo "target gateways samples seconds rate cpu_us_per_sample"
for r in $(seq "$ROUNDS"); do
  run single "127.0.0.1:$SINGLE" 1 "$SINGLE"
  run cluster "$CLUSTER" 1 "${C[0]}"
  run single "127.0.0.1:$SINGLE" 2 "$SINGLE"
  run cluster "$CLUSTER" 2 "${C[0]}"
done

# State load: one shard holding 49 850 series (the most distinct series the synthetic
# generator makes: 50 names × 997 label values), written by one gateway, loaded by the
# next after kill -9.
key="bench:load$RANDOM"
"$G" loadgen --redis "$CLUSTER" --key "$key" --count 200000 --series 200000 --mix 100,0,0,0 --shards 1 --quiet >/dev/null
series() { curl -s "127.0.0.1:$1/metrics" | awk '/^prom_stream_gateway_series\{type="counter"\}/ {print $2}'; }
processed() { curl -s "127.0.0.1:$1/metrics" | awk '/^prom_stream_gateway_processed_metrics_total/ {s+=$2} END {print s+0}'; }
start "$CLUSTER" "$key" a 1; first=${GW[-1]}; fport=$HTTP
until [ "$(processed "$fport")" = 200000 ]; do sleep 0.1; done
held=$(series "$fport")
sleep 2   # a snapshot
kill -9 "$first"; wait "$first" 2>/dev/null || true
start "$CLUSTER" "$key" b 1
until [ "$(series "$HTTP")" = "$held" ]; do sleep 0.1; done
echo "state of $held series: $(redis-cli -c -p "${C[0]}" strlen "$key:{0}:state") bytes, loaded in $(curl -s "127.0.0.1:$HTTP/metrics" | awk '/^prom_stream_gateway_shard_state_load_seconds/ {print $2}') s"
