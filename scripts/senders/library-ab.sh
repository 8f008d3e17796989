#!/usr/bin/env bash
# What a change to the PHP and Python libraries costs the sender, interleaved:
# `scripts/senders/library-ab.sh REV` runs sender.php's and sender.py's `library` method
# (M measurements an invocation, make bench-senders' mix) with the libraries of git
# revision REV and of the working tree, alternately, ROUNDS times (default 6) for each M in
# MS (default "200 1000") and each of LANGS (default "php python"), against a private redis-server on loopback without added
# latency, and prints each side's median CPU per measurement and new ÷ old.
# A program, not a test: it asserts nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REV=${1:?usage: scripts/senders/library-ab.sh REV}
ROUNDS=${ROUNDS:-6}
MS=${MS:-"200 1000"}
LANGS=${LANGS:-"php python"}
DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
trap 'redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
git archive "$REV" clients | tar -x -C "$DIR"
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" --daemonize yes --logfile "$DIR/redis.log"
until redis-cli -p "$PORT" ping >/dev/null 2>&1; do sleep 0.05; done

# run LANG CLIENTS_DIR M → µs of CPU per measurement
run() {
  local out
  if [ "$1" = php ]; then
    out=$(CLIENTS_DIR=$2 php scripts/senders/sender.php library "$3" 2000 3 "$PORT" 0)
  else
    out=$(CLIENTS_DIR=$2 python3 scripts/senders/sender.py library "$3" 2000 3 "$PORT")
  fi
  redis-cli -p "$PORT" del prom-stream-gateway:metric-queue >/dev/null
  awk -v m="$3" '{ printf "%.3f\n", $4 / m }' <<<"$out"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "| library | M | $REV µs/measurement | working tree | new ÷ old | new faster in |"
echo "|---|---:|---:|---:|---:|---:|"
for lang in $LANGS; do
  for m in $MS; do
    old=() new=() faster=0
    for r in $(seq "$ROUNDS"); do
      # Alternate which side goes first: a machine that speeds up or slows down favours neither.
      if [ $((r % 2)) = 1 ]; then a=$(run "$lang" "$DIR/clients" "$m"); b=$(run "$lang" "$PWD/clients" "$m")
      else b=$(run "$lang" "$PWD/clients" "$m"); a=$(run "$lang" "$DIR/clients" "$m"); fi
      old+=("$a") new+=("$b")
      awk -v a="$a" -v b="$b" 'BEGIN { exit !(b < a) }' && faster=$((faster + 1))
    done
    o=$(printf '%s\n' "${old[@]}" | median) n=$(printf '%s\n' "${new[@]}" | median)
    awk -v l="$lang" -v m="$m" -v o="$o" -v n="$n" -v f="$faster" -v r="$ROUNDS" \
      'BEGIN { printf "| %s | %d | %.3f | %.3f | %.3f | %d of %d |\n", l, m, o, n, n / o, f, r }'
  done
done
