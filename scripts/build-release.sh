#!/usr/bin/env bash
# Builds the release gateway binary. The Dockerfile runs this same script, so the
# container build and `make release` cannot drift apart.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product gateway "$@"
echo "built $(swift build -c release --show-bin-path)/gateway"
