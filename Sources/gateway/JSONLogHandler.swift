import Foundation
import Logging
import Pipeline
import Synchronization

/// `--log-format json`: one JSON object per line on stderr, as log pipelines
/// (Loki, Elasticsearch, CloudWatch) ingest them: `ts` (RFC 3339, UTC,
/// milliseconds), `level`, `logger`, `msg`, `source` (the module), then the
/// metadata as string fields. Lines are written whole, under one lock.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    private static let output = Mutex(())

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = [("ts", rfc3339Now()), ("level", event.level.rawValue), ("logger", label), ("msg", event.message.description),
                      ("source", event.source)]
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let reserved: Set = ["ts", "level", "logger", "msg", "source"]
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            fields.append((reserved.contains(key) ? "meta_" + key : key, value.description))
        }
        let text = "{" + fields.map { "\"\(jsonEscape($0.0))\":\"\(jsonEscape($0.1))\"" }.joined(separator: ",") + "}\n"
        Self.output.withLock { _ in
            let bytes = Array(text.utf8)
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
                if n <= 0 { if errno == EINTR { continue }; break }
                offset += n
            }
        }
    }
}
