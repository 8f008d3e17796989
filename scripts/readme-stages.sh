#!/usr/bin/env bash
# Regenerates the README's stage reference from `gateway stages --markdown`.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product gateway >/dev/null
.build/debug/gateway stages --markdown > /tmp/stages.$$
python3 - /tmp/stages.$$ <<'PY'
import sys, re
stages = open(sys.argv[1]).read()
readme = open("README.md").read()
new = re.sub(r"<!-- stages:begin -->\n.*?<!-- stages:end -->", lambda m: "<!-- stages:begin -->\n" + stages + "<!-- stages:end -->", readme, flags=re.S)
open("README.md", "w").write(new)
PY
rm -f /tmp/stages.$$
