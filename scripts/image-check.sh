#!/usr/bin/env bash
# `make image-check` (part of `make test`): the Dockerfile's runtime stage, verified
# without a Docker engine. A Debian bookworm root made by `debootstrap --variant=minbase`
# (cached as a tarball under .build-image/), the runtime packages the Dockerfile's
# runtime stage installs (read from the Dockerfile, so the two cannot drift), its user
# (uid 10001) and pipelines, and the static binary built by the Dockerfile's own build
# script. The binary runs there as uid 10001 (`chroot --userspec`) against a
# redis-server on loopback: /-/ready must answer 200 and a pushed sample must be on
# /metrics. Needs root and deb.debian.org.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "image-check: needs root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "image-check: debootstrap missing (make deps installs it)" >&2; exit 1; }
CACHE=.build-image
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$CACHE"

# The runtime stage: the packages after its `apt-get install`, and the user it creates.
runtime=$(awk '/^FROM debian:bookworm-slim/{r=1} r' Dockerfile)
packages=$(printf '%s\n' "$runtime" | sed -n 's/.*apt-get install -y --no-install-recommends \([^\\&]*\).*/\1/p' | head -1 | xargs)
[ -n "$packages" ] || { echo "image-check: no apt-get install line in the Dockerfile's runtime stage" >&2; exit 1; }
uid=$(printf '%s\n' "$runtime" | sed -n 's/.*useradd .*--uid \([0-9]*\).*/\1/p' | head -1)
[ -n "$uid" ] || { echo "image-check: no useradd --uid in the runtime stage" >&2; exit 1; }
grep -q "^USER $uid" Dockerfile || { echo "image-check: the runtime stage does not run as USER $uid" >&2; exit 1; }

# The root with those packages, cached per package list.
key=$(printf '%s' "$packages" | sha256sum | cut -c1-12)
tarball=$CACHE/bookworm-minbase-$key.tar
if [ ! -f "$tarball" ]; then
  base=$CACHE/bookworm-minbase.tar
  if [ ! -f "$base" ]; then
    rm -rf "$CACHE/bootstrap"
    debootstrap --variant=minbase bookworm "$CACHE/bootstrap" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
    tar -C "$CACHE/bootstrap" -cf "$base" .
    rm -rf "$CACHE/bootstrap"
  fi
  rm -rf "$CACHE/pkgroot" && mkdir -p "$CACHE/pkgroot" && tar -C "$CACHE/pkgroot" -xf "$base"
  cp /etc/resolv.conf "$CACHE/pkgroot/etc/resolv.conf"
  chroot "$CACHE/pkgroot" /bin/sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages && rm -rf /var/lib/apt/lists/*" \
    >"$CACHE/apt.log" 2>&1 || { tail -20 "$CACHE/apt.log" >&2; exit 1; }
  tar -C "$CACHE/pkgroot" -cf "$tarball" .
  rm -rf "$CACHE/pkgroot"
fi
ROOT=$(mktemp -d "$PWD/$CACHE/root.XXXXXX")
REDIS_PID=; GATEWAY_PID=
cleanup() {
  if [ -n "$GATEWAY_PID" ]; then kill "$GATEWAY_PID" 2>/dev/null || true; wait "$GATEWAY_PID" 2>/dev/null || true; fi
  if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; fi
  umount "$ROOT/proc" 2>/dev/null || true
  rm -rf "$ROOT"
}
trap cleanup EXIT
tar -C "$ROOT" -xf "$tarball"
chroot "$ROOT" useradd --system --uid "$uid" --no-create-home gateway 2>/dev/null
# A container has /proc; the Swift runtime reads the command line from /proc/self/cmdline.
mount -t proc proc "$ROOT/proc"

# The binary, built as the Dockerfile builds it (its build script, static Swift runtime).
./scripts/build-release.sh --static-swift-stdlib >/dev/null
install -m 0755 "$(swift build -c release --show-bin-path)/gateway" "$ROOT/usr/local/bin/gateway"
strip "$ROOT/usr/local/bin/gateway"
mkdir -p "$ROOT/etc/prom-stream-gateway" && cp pipelines/*.yaml "$ROOT/etc/prom-stream-gateway/"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RPORT=$(free_port); HPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
REDIS_PID=$!
env -i PATH=/usr/local/bin:/usr/bin:/bin Redis__ConnectionString="127.0.0.1:$RPORT" "$(command -v chroot)" --userspec="$uid:$uid" "$ROOT" \
  /usr/local/bin/gateway run --listen "127.0.0.1:$HPORT" --config /etc/prom-stream-gateway/default.yaml >"$CACHE/image-run.log" 2>&1 &
GATEWAY_PID=$!
for _ in $(seq 100); do curl -sf "127.0.0.1:$HPORT/-/ready" >/dev/null && break; sleep 0.1; done
curl -sf "127.0.0.1:$HPORT/-/ready" >/dev/null || { echo "image-check: /-/ready did not answer 200" >&2; cat "$CACHE/image-run.log" >&2; exit 1; }
redis-cli -p "$RPORT" LPUSH prom-stream-gateway:metric-queue '{"type":"counter","name":"image_check_total","value":3}' >/dev/null
# The page is read whole before grep: `curl | grep -q` fails under pipefail when
# grep exits first and curl gets EPIPE.
pushed() { local page; page=$(curl -s "127.0.0.1:$HPORT/metrics"); grep -q '^image_check_total 3$' <<<"$page"; }
for _ in $(seq 50); do pushed && break; sleep 0.1; done
pushed || { echo "image-check: the pushed sample is not on /metrics" >&2; cat "$CACHE/image-run.log" >&2; exit 1; }
user=$(ps -o uid= -p "$(pgrep -f "gateway run --listen 127.0.0.1:$HPORT" | head -1)" | tr -d ' ')
[ "$user" = "$uid" ] || { echo "image-check: the gateway ran as uid $user, not $uid" >&2; exit 1; }
echo "image-check ok: bookworm minbase + $packages; static binary as uid $uid; /-/ready 200; a pushed sample on /metrics"
