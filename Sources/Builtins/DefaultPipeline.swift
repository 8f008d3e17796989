import Foundation
import Pipeline

/// What `gateway run` does without `--config`: the .NET gateway's pipeline, driven
/// by its environment settings. `pipelines/default.yaml` holds the same
/// text (a test keeps the two identical).
public let defaultPipelineYAML = """
# The default pipeline: what `gateway run` does without --config.
# Settings come from the .NET gateway's environment variables (`__` separates levels).
# Bytes of batches in flight between the source and the sink, whatever the elements' size.
memory_budget: "${Pipeline__MemoryBudget:-32MiB}"
sources:
  queue:
    type: redis_list
    url: "${Redis__ConnectionString:-localhost:6379}"
    database: "${Redis__MetricQueueDatabase:-}"
    key: "${Redis__MetricQueueKey:-prom-stream-gateway:metric-queue}"
    workers: ${Redis__MetricQueueWorkers:-2}
    pop_count: ${Redis__MetricQueuePopCount:-25}
    # Small elements are popped up to this many at a time (one 64 KiB reply): fewer commands for Redis to serve.
    max_pop_count: ${Redis__MetricQueueMaxPopCount:-400}
    # Metrics__StateFile turns on exactly-once: reliable pops and a durable aggregate.
    reliable: "${Metrics__StateFile:+true}"
    instance: "${Gateway__Instance:-}"
    # Scale-out: a sharded queue key:{0} … key:{N-1}, split by the gateways of Gateway__Group.
    shards: ${Redis__MetricQueueShards:-0}
    group: "${Gateway__Group:-}"
    lease_ttl: "${Gateway__LeaseTtl:-6s}"
    # TLS itself comes from rediss:// or ssl=true in Redis__ConnectionString.
    tls:
      ca_file: "${Redis__TlsCaFile:-}"
      cert_file: "${Redis__TlsCertFile:-}"
      key_file: "${Redis__TlsKeyFile:-}"
transforms:
  decode:
    type: json_decode
    inputs: [queue]
    workers: 2
    # Metrics__JsonParser: jansson (default) or simdjson (same results, faster).
    parser: "${Metrics__JsonParser:-jansson}"
    # Metrics__DeadLetterKey: rejected payloads and samples onto a capped list, on the same Redis as the queue.
    dead_letter: &dead_letter
      url: "${Redis__ConnectionString:-localhost:6379}"
      key: "${Metrics__DeadLetterKey:-}"
      tls: { ca_file: "${Redis__TlsCaFile:-}", cert_file: "${Redis__TlsCertFile:-}", key_file: "${Redis__TlsKeyFile:-}" }
  validate:
    type: validate
    inputs: [decode]
    dead_letter: *dead_letter
  sort:
    type: sort_labels
    inputs: [validate]
    enabled: ${Metrics__SortIncomingLabels:-true}
sinks:
  prometheus:
    type: prometheus
    inputs: [sort]
    dead_letter: *dead_letter
    listen: "${GATEWAY_LISTEN:-0.0.0.0:9091}"
    disable_meta_metrics: ${Metrics__DisableMetaMetrics:-false}
    state_file: "${Metrics__StateFile:-}"
    # A group keeps each shard's state in Redis, next to the shard.
    state: "${Gateway__Group:+redis}"
    snapshot_interval: "${Metrics__SnapshotInterval:-5s}"
    web_config_file: "${GATEWAY_WEB_CONFIG_FILE:-}"
    enable_admin_api: ${GATEWAY_ENABLE_ADMIN_API:-false}
    enable_lifecycle: ${GATEWAY_ENABLE_LIFECYCLE:-false}

"""

/// Appended to the default pipeline's sinks when `RemoteWrite__Url` is set: the same
/// samples are also aggregated by a `remote_write` sink and pushed every interval.
public let defaultRemoteWriteYAML = """
  # RemoteWrite__Url: the aggregate also pushed by Prometheus remote write.
  remote_write:
    type: remote_write
    inputs: [sort]
    url: "${RemoteWrite__Url}"
    interval: "${RemoteWrite__Interval:-15s}"
    basic_auth:
      username: "${RemoteWrite__Username:-}"
      password_file: "${RemoteWrite__PasswordFile:-}"
    authorization:
      credentials_file: "${RemoteWrite__BearerTokenFile:-}"

"""

/// Added to the default pipeline's sources when `Otlp__Listen` is set: OpenTelemetry
/// senders' points join the Redis senders' samples at `validate`.
public let defaultOTLPYAML = """
  # Otlp__Listen: OTLP/HTTP senders (POST /v1/metrics) aggregated with the Redis ones.
  otlp:
    type: otlp
    listen: "${Otlp__Listen}"
    web_config_file: "${GATEWAY_WEB_CONFIG_FILE:-}"

"""

/// The default pipeline for `environment`: with `RemoteWrite__Url` set, a
/// `remote_write` sink beside the `prometheus` one; with `Otlp__Listen`, an `otlp`
/// source beside the Redis one.
public func defaultPipeline(environment: [String: String]) throws(ConfigError) -> String {
    var yaml = defaultPipelineYAML
    let grouped = !(environment["Gateway__Group"] ?? "").isEmpty
    if let listen = environment["Otlp__Listen"], !listen.isEmpty {
        // A group's state follows the queue's shards; OTLP points belong to none.
        if grouped { throw ConfigError.invalid(key: "Otlp__Listen", reason: "the otlp source with Gateway__Group (scale-out) is not supported yet") }
        yaml = yaml.replacingOccurrences(of: "transforms:\n", with: defaultOTLPYAML + "transforms:\n")
            .replacingOccurrences(of: "    inputs: [decode]\n", with: "    inputs: [decode, otlp]\n")
    }
    guard let url = environment["RemoteWrite__Url"], !url.isEmpty else { return yaml }
    if grouped {
        // A shard moves between gateways; the remote_write aggregate does not follow it yet.
        throw ConfigError.invalid(key: "RemoteWrite__Url", reason: "remote write with Gateway__Group (scale-out) is not supported yet")
    }
    return yaml + defaultRemoteWriteYAML
}
