#!/usr/bin/env bash
# Regenerates docs/stages.md from `gateway stages --markdown`.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product gateway >/dev/null
.build/debug/gateway stages --markdown > /tmp/stages.$$
python3 - /tmp/stages.$$ <<'PY'
import sys, re
stages = open(sys.argv[1]).read()
readme = open("docs/stages.md").read()
new = re.sub(r"<!-- stages:begin -->\n.*?<!-- stages:end -->", lambda m: "<!-- stages:begin -->\n" + stages + "<!-- stages:end -->", readme, flags=re.S)
open("docs/stages.md", "w").write(new)
PY
rm -f /tmp/stages.$$
