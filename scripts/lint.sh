#!/usr/bin/env bash
# `make lint`: what can be checked of the container build without a Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."
# pip's scripts directory, in case no shim or PATH entry points at it yet.
scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
hadolint=$(command -v hadolint || echo "$scripts/hadolint")
"$hadolint" --ignore DL3008 Dockerfile          # DL3008: bookworm's packages are pinned by the release
python3 -m check_jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
promtool check config deploy/prometheus/prometheus.yml >/dev/null
promtool check rules deploy/prometheus/rules.yml >/dev/null
promtool test rules deploy/prometheus/rules.test.yml >/dev/null
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
# Kubernetes manifests against the bundled API schemas (offline), the ServiceMonitor against
# the fields it uses, and the wiring between them (selectors, port names, probe paths).
k8s=deploy/kubernetes
kubernetes-validate --strict --quiet $k8s/statefulset.yaml $k8s/service.yaml $k8s/poddisruptionbudget.yaml $k8s/secret.example.yaml
python3 -m check_jsonschema --schemafile $k8s/servicemonitor.schema.json $k8s/servicemonitor.yaml >/dev/null
python3 - "$k8s" <<'PY'
import sys, yaml
d = sys.argv[1]
load = lambda n: yaml.safe_load(open(f"{d}/{n}"))
sts, svc, pdb, sm, kust = (load(n) for n in ["statefulset.yaml", "service.yaml", "poddisruptionbudget.yaml", "servicemonitor.yaml", "kustomization.yaml"])
pod = sts["spec"]["template"]
labels = pod["metadata"]["labels"]
container = pod["spec"]["containers"][0]
ports = {p["name"] for p in container["ports"]}
def selects(selector): return all(labels.get(k) == v for k, v in selector.items())
problems = []
if not selects(sts["spec"]["selector"]["matchLabels"]): problems.append("statefulset selector does not match its pod")
if not selects(svc["spec"]["selector"]): problems.append("service selector does not match the pod")
if not selects(pdb["spec"]["selector"]["matchLabels"]): problems.append("PDB selector does not match the pod")
if not all(svc["metadata"]["labels"].get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items()): problems.append("ServiceMonitor does not select the service")
svc_ports = {p["name"] for p in svc["spec"]["ports"]}
for e in sm["spec"]["endpoints"]:
    if e["port"] not in svc_ports: problems.append(f"ServiceMonitor port {e['port']} is not a service port")
for p in svc["spec"]["ports"]:
    if p["targetPort"] not in ports: problems.append(f"service targetPort {p['targetPort']} is not a container port")
if container["livenessProbe"]["httpGet"]["path"] != "/-/healthy" or container["readinessProbe"]["httpGet"]["path"] != "/-/ready": problems.append("probes must use /-/healthy and /-/ready")
if not container["securityContext"].get("readOnlyRootFilesystem") or not pod["spec"]["securityContext"].get("runAsNonRoot"): problems.append("the pod must run non-root with a read-only root filesystem")
mounts = {m["mountPath"] for m in container["volumeMounts"]}
state = next(e["value"] for e in container["env"] if e["name"] == "Metrics__StateFile")
if not any(state.startswith(m + "/") for m in mounts): problems.append(f"Metrics__StateFile {state} is not on a mounted volume")
missing = {"statefulset.yaml", "service.yaml", "poddisruptionbudget.yaml", "servicemonitor.yaml"} - set(kust["resources"])
if missing: problems.append(f"kustomization misses {sorted(missing)}")
if problems: sys.exit("deploy/kubernetes: " + "; ".join(problems))
PY
echo "lint ok: Dockerfile (hadolint), docker-compose.yml (compose-spec schema), deploy/prometheus (promtool check config, check rules, test rules), deploy/kubernetes (kubernetes-validate, wiring)"
