#!/usr/bin/env bash
# `make lint`: what can be checked of the container build without a Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."
# pip's scripts directory, in case no shim or PATH entry points at it yet.
scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
hadolint=$(command -v hadolint || echo "$scripts/hadolint")
"$hadolint" --ignore DL3008 Dockerfile          # DL3008: bookworm's packages are pinned by the release
python3 -m check_jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
promtool check config deploy/prometheus.yml >/dev/null
# The Dockerfile builds with the script `make release` runs, and copies what it needs.
grep -q 'scripts/build-release.sh' Dockerfile
for path in Package.swift Sources Tests scripts pipelines; do grep -q "COPY $path" Dockerfile; done
# The build stage uses the toolchain the tests run on (swift:MAJOR.MINOR-bookworm).
toolchain=$(swift --version 2>/dev/null | sed -n 's/.*Swift version \([0-9]*\.[0-9]*\).*/\1/p' | head -1)
grep -q "FROM swift:$toolchain-bookworm AS build" Dockerfile || { echo "Dockerfile: build stage is not swift:$toolchain-bookworm (the toolchain tested here)"; exit 1; }
# Runtime packages cover what the binary links (ldd of the local release build, if present).
bin=$(swift build -c release --show-bin-path 2>/dev/null)/gateway
if [ -x "$bin" ]; then
  for lib in $(ldd "$bin" | awk '/=>/ {print $1}' | grep -E 'hiredis|jansson|pcre2|libz|libssl|libcrypto|libcrypt'); do
    case $lib in
      libhiredis.so.0.14) grep -q libhiredis0.14 Dockerfile ;;
      libjansson.so.4) grep -q libjansson4 Dockerfile ;;
      libpcre2-8.so.0) grep -q libpcre2-8-0 Dockerfile ;;
      libz.so.1) grep -q zlib1g Dockerfile ;;
      libssl.so.3|libcrypto.so.3) grep -q libssl3 Dockerfile ;;
      libcrypt.so.1) grep -q libcrypt1 Dockerfile ;;
    esac
  done
fi
echo "lint ok: Dockerfile (hadolint), docker-compose.yml (compose-spec schema), deploy/prometheus.yml (promtool)"
