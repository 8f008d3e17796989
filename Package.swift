// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "prom-stream-gateway",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gateway", targets: ["gateway"]),
        // A swift-metrics backend for Vapor, Hummingbird and swift-aws-lambda-runtime senders.
        .library(name: "PromStreamMetrics", targets: ["PromStreamMetrics"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
    ],
    targets: [
        // C libraries from Debian's -dev packages. No `pkgConfig:`: hiredis' .pc adds
        // -D_FILE_OFFSET_BITS=64, which SwiftPM refuses.
        .systemLibrary(name: "CHiredis", path: "Sources/CHiredis"),
        .systemLibrary(name: "CJansson", path: "Sources/CJansson"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
        .systemLibrary(name: "CPCRE2", path: "Sources/CPCRE2"),
        // snappy's block format (libsnappy-dev): remote write bodies.
        .systemLibrary(name: "CSnappy", path: "Sources/CSnappy"),
        // OpenSSL 3 (libssl-dev): TLS to Redis and on /metrics. libxcrypt (libcrypt-dev): bcrypt.
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL"),
        .systemLibrary(name: "CCrypt", path: "Sources/CCrypt"),
        // Thin owners of OpenSSL's contexts and sessions, shared by both ends.
        .target(name: "TLS", dependencies: ["COpenSSL"]),

        .target(name: "Pipeline", dependencies: [
            .product(name: "Yams", package: "Yams"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // One Redis client for every stage: connection and transport (TLS), the URL and .NET
        // connection string, Sentinel, Cluster, scripts, the sharded queue's keys, and the
        // options every stage that talks to Redis reads the same way.
        .target(name: "Redis", dependencies: ["Pipeline", "CHiredis", "TLS"]),
        .target(name: "Sources", dependencies: ["Pipeline", "Redis", "Web", "CHiredis", "CZlib", "TLS", .product(name: "NIOHTTP1", package: "swift-nio")]),
        // A per-thread bump allocator jansson parses into (json_decode's hot path).
        .target(name: "CJanssonArena", dependencies: ["CJansson"]),
        // PCRE2 patterns anchored as Prometheus anchors them (relabel rules, series selectors).
        .target(name: "Patterns", dependencies: ["CPCRE2"]),
        // json_decode's simdjson fast path (libsimdjson-dev), a C ABI over its On-Demand API.
        .target(name: "CSimdJSON", linkerSettings: [.linkedLibrary("simdjson")]),
        .target(name: "Transforms", dependencies: ["Pipeline", "CJansson", "CJanssonArena", "CSimdJSON", "Patterns"]),
        // Aggregation as a library: the store (families, series, summaries, native
        // histograms, limits, expiry), its state file and snapshots, and the exposition
        // formats — what any sink that holds an aggregate builds on.
        .target(name: "Aggregation", dependencies: ["Pipeline", "CZlib", "Patterns", .product(name: "Logging", package: "swift-log")]),
        // The HTTP server every stage that listens shares (the prometheus sink, the otlp
        // source, the gateway's process endpoints): swift-nio, TLS and mTLS, basic auth,
        // the exporter-toolkit web config.
        .target(name: "Web", dependencies: [
            "Pipeline", "TLS", "COpenSSL", "CCrypt", "CZlib",
            .product(name: "Yams", package: "Yams"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .target(name: "Sinks", dependencies: [
            "Pipeline", "Redis", "Aggregation", "Transforms", "Web", "CZlib", "CSnappy", "TLS", "COpenSSL", "Patterns", "CMalloc",
            .product(name: "Yams", package: "Yams"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // The Swift sender: a swift-metrics backend buffering into one LPUSH per shard per flush.
        .target(name: "PromStreamMetrics", dependencies: ["Pipeline", "Redis", .product(name: "CoreMetrics", package: "swift-metrics")]),
        // The registry of built-in stages and their generated reference, shared by
        // the binary and the tests (which walk the real registry).
        .target(name: "Builtins", dependencies: ["Pipeline", "Redis", "Sources", "Transforms", "Sinks"]),
        // Realistic queue elements for `gateway loadgen` and the benchmarks.
        .target(name: "Synthetic"),
        .executableTarget(name: "gateway", dependencies: [
            "Pipeline", "Redis", "Sources", "Sinks", "Builtins", "Synthetic", "TLS",
            .product(name: "Yams", package: "Yams"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Microbenchmarks of the hot pieces (`make bench`); a program, not a test.
        .executableTarget(name: "bench", dependencies: [
            "Pipeline", "Redis", "Sources", "Transforms", "Sinks", "Aggregation", "Web", "Synthetic", "CJansson",
        ]),

        // The fuzz harness (library, replayed by tests) and its libFuzzer entry (`make fuzz`).
        .target(name: "Fuzzing", dependencies: ["Pipeline", "Sources", "Transforms", "Sinks", "Aggregation", .product(name: "Logging", package: "swift-log")]),
        .executableTarget(name: "fuzz", dependencies: ["Fuzzing"], swiftSettings: [.unsafeFlags(["-parse-as-library"])]),

        // Test-only helpers: a real redis-server on a free loopback port, HTTP GETs.
        .target(name: "TestSupport", dependencies: ["Pipeline", "Redis", "TLS", .product(name: "Logging", package: "swift-log")], path: "Tests/TestSupport"),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "TestSupport", .product(name: "Yams", package: "Yams")]),
        .testTarget(name: "SourcesTests", dependencies: ["Sources", "Redis", "TLS", "Web", "Pipeline", "Aggregation", "TestSupport"]),
        .testTarget(name: "TransformsTests", dependencies: ["Transforms", "CJanssonArena", "Synthetic", "Fuzzing", "TestSupport"]),
        .testTarget(name: "SinksTests", dependencies: ["Sinks", "Aggregation", "Redis", "TLS", "Web", "Fuzzing", "TestSupport", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "PromStreamMetricsTests", dependencies: [
            "PromStreamMetrics", "Redis", "TLS", "TestSupport", .product(name: "Metrics", package: "swift-metrics"),
        ]),
        .testTarget(name: "GatewayTests", dependencies: [
            "Pipeline", "Redis", "Aggregation", "Sources", "Transforms", "Sinks", "Web", "Builtins", "Synthetic", "TestSupport",
        ]),
    ],
    swiftLanguageModes: [.v6],
    cxxLanguageStandard: .cxx17
)
