import Web
import Aggregation
import Logging
import Pipeline

/// The gateway's own HTTP server, for a pipeline in which no sink serves HTTP (only
/// `remote_write`, only the router): `/`, `/-/healthy`, `/ready`, `/-/reload`
/// (`ProcessEndpoints`) and `/metrics` with the gateway's own meta-metrics. The
/// gateway owns it, so a reload never rebuilds the server answering the reload.
public final class ProcessServer: Sendable {
    private let server: HTTPServer
    public var port: Int { server.port }

    public init(listen: String, telemetry: Telemetry, health: HealthBoard, enableLifecycle: Bool, logger: Logger) throws {
        guard let (host, port) = PrometheusSinkConfig.parseListen(listen) else {
            throw ConfigError.invalid(key: "--listen", reason: "expected HOST:PORT, got `\(listen)`")
        }
        let exposition = Exposition(store: MetricStore()) {
            [ProcessEndpoints.info] + ProcessEndpoints.metaFamilies(health: health) + telemetry.collect()
        }
        server = try HTTPServer(host: host, port: port) { request in
            if request.path == "/-/reload" {
                return HTTPResponse(ProcessEndpoints.reload(method: request.method.rawValue, enabled: enableLifecycle))
            }
            guard request.method == .GET || request.method == .HEAD else { return PrometheusSink.methodNotAllowed(allow: "GET, HEAD") }
            if let a = ProcessEndpoints.answer(path: request.path, health: health) { return HTTPResponse(a) }
            guard request.path == "/metrics" else { return PrometheusSink.notFound }
            let format = ExpositionFormat.negotiate(accept: request.accept, enabled: Set(ExpositionFormat.allCases)) ?? .text
            return HTTPResponse(status: .ok, contentType: format.contentType, body: exposition.render(format), headers: [("Vary", "Accept")])
        }
        logger.info("no sink serves HTTP: the gateway serves /ready, /-/healthy and its own /metrics",
                    metadata: ["listen": "http://\(host):\(server.port)"])
    }

    public func shutdown() { server.shutdown() }
}
