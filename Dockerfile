# prom-stream-gateway — `docker-compose up -d --build` (see docker-compose.yml).
# Build stage: the official Swift 6 image on Debian bookworm, release build with the
# Swift runtime linked statically, by the same script `make release` runs.
FROM swift:6.3-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libhiredis-dev libjansson-dev libsimdjson-dev libsnappy-dev libpcre2-dev zlib1g-dev libssl-dev libcrypt-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
COPY scripts ./scripts
RUN ./scripts/build-release.sh --static-swift-stdlib \
 && install -m 0755 "$(swift build -c release --show-bin-path)/gateway" /gateway \
 && strip /gateway

# Runtime stage: only the C libraries `ldd` shows, as a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libhiredis0.14 libjansson4 libsimdjson14 libsnappy1v5 libpcre2-8-0 zlib1g libssl3 libcrypt1 ca-certificates libstdc++6 curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home gateway
COPY --from=build /gateway /usr/local/bin/gateway
# The example pipelines, for `gateway run --config /etc/prom-stream-gateway/relabel.yaml`.
COPY pipelines /etc/prom-stream-gateway
USER 10001
# Configuration: the .NET gateway's environment settings (Redis__ConnectionString, …).
ENV Redis__ConnectionString=redis:6379
EXPOSE 9091
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["curl", "-fsS", "http://127.0.0.1:9091/"]
ENTRYPOINT ["/usr/local/bin/gateway"]
CMD ["run"]
