/// What the gateway process answers whoever serves HTTP for it — the `prometheus`
/// sink on its port, or the gateway's own process server when no sink serves HTTP:
/// liveness, readiness, the reload trigger, and the process's own meta-metrics.
/// Pure answers (status, type, body), so any HTTP server can mount them.
public enum ProcessEndpoints {
    public struct Answer: Equatable, Sendable {
        public var status: Int
        public var contentType: String
        public var body: String
        public var allow: String?
    }

    static let text = "text/plain; charset=utf-8"

    /// `GET|HEAD /`, `/-/healthy` (liveness: the process answers) and `/ready`, `/-/ready`
    /// (200 when every source is ready, else 503, with a JSON body naming each); nil: not one of these.
    public static func answer(path: Substring, health: HealthBoard) -> Answer? {
        switch path {
        case "/", "/-/healthy":
            return Answer(status: 200, contentType: text, body: "ok")
        case "/ready", "/-/ready":
            let entries = health.snapshot
            let ready = entries.allSatisfy(\.ready)
            let sources = entries.map { "\"\(jsonEscape($0.id))\":{\"ready\":\($0.ready),\"detail\":\"\(jsonEscape($0.detail))\"}" }
            return Answer(status: ready ? 200 : 503, contentType: "application/json",
                          body: "{\"ready\":\(ready),\"sources\":{\(sources.joined(separator: ","))}}\n")
        default:
            return nil
        }
    }

    /// `POST|PUT /-/reload` (Prometheus's `--web.enable-lifecycle`): the file is checked at
    /// once — 400 with its errors when it does not validate (the running pipeline stays); 200
    /// when it does, and the pipeline is replaced right after. `enabled` false: 404.
    public static func reload(method: String, enabled: Bool) -> Answer {
        guard enabled else { return Answer(status: 404, contentType: text, body: "not found\n") }
        guard method == "POST" || method == "PUT" else {
            return Answer(status: 405, contentType: text, body: "method not allowed\n", allow: "POST, PUT")
        }
        switch ReloadSignal.request() {
        case .accepted(let what):
            return Answer(status: 200, contentType: text, body: "\(what)\n")
        case .refused(let errors):
            return Answer(status: 400, contentType: text,
                          body: "the pipeline file does not validate; the running pipeline stays:\n" + errors.joined(separator: "\n") + "\n")
        case .unavailable:
            return Answer(status: 503, contentType: text, body: "reloading is not available\n")
        }
    }

    public static let infoHelp = "prom-stream-gateway drains samples that short-lived workloads LPUSH as JSON onto a Redis list, "
        + "aggregates counters, "
        + "gauges, histograms and summaries, and serves them here for Prometheus to scrape. Always 1; the version label says which build runs."

    /// `prom_stream_gateway_info`, always.
    public static var info: MetaFamily {
        MetaFamily(name: Telemetry.prefix + "info", help: infoHelp, type: .gauge,
                   samples: [MetaSample(labels: [("version", GatewayVersion.current)], value: 1)])
    }

    /// The process's own families: reload outcome and time, readiness per source.
    public static func metaFamilies(health: HealthBoard) -> [MetaFamily] {
        let p = Telemetry.prefix
        return [
            MetaFamily(name: p + "config_last_reload_successful",
                       help: "Whether the last reload of the pipeline file (SIGHUP, POST /-/reload) succeeded.",
                       type: .gauge, samples: [MetaSample(labels: [], value: ReloadSignal.lastSuccessful.load(ordering: .acquiring) ? 1 : 0)]),
            MetaFamily(name: p + "config_last_reload_success_timestamp_seconds",
                       help: "When the pipeline was last (re)loaded successfully (Unix time).",
                       type: .gauge, samples: [MetaSample(labels: [], value: Double(ReloadSignal.lastSuccessSeconds.load(ordering: .acquiring)))]),
            MetaFamily(name: p + "ready",
                       help: "1 when samples can flow from the source (connected, pops succeed), else 0: what /ready answers, per source.",
                       type: .gauge, samples: health.snapshot.map { MetaSample(labels: [("source", $0.id)], value: $0.ready ? 1 : 0) }),
        ]
    }
}
