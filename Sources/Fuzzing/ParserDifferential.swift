import Logging
import Aggregation
import Pipeline
import Transforms

/// `json_decode` with `parser: simdjson` against `parser: jansson` on the same
/// input (the element whole, and split at newlines into several): any difference
/// in what a later stage can see — samples, their labels in order, numbers to the
/// bit, exemplars, drops and their notes — is a finding. simdjson is checked twice:
/// as configured (the scanner, then On-Demand) and with On-Demand alone, so that each
/// fast path is held to jansson on every input. Used by `make fuzz-diff` and by the
/// differential test. One instance per thread.
public final class ParserDifferential {
    let jansson = ParserDifferential.decoder(.jansson)
    let simdjson = ParserDifferential.decoder(.simdjson)
    let onDemand = ParserDifferential.decoder(.simdjson, scanner: false)

    public init() {}

    static func decoder(_ parser: JSONDecodeConfig.Parser, scanner: Bool = true) -> JSONDecodeTransform {
        var c = JSONDecodeConfig(options: OptionReader(describing: "d"))
        c.parser = parser
        c.scanner = scanner
        let context = StageContext(id: "d", logger: Logger(label: "d", factory: { _ in SwiftLogNoOpLogHandler() }),
                                   telemetry: Telemetry(), health: HealthBoard(), workers: 1)
        return JSONDecodeTransform(config: c, context: context)
    }

    /// Elements the simdjson side handed to jansson so far.
    public var fallbacks: UInt64 { simdjson.fallbacks.value }
    /// Elements the scanner decoded so far (the rest went to On-Demand or jansson).
    public var scanned: Int { simdjson.scanned }

    public func difference(_ data: UnsafeRawBufferPointer) -> String? {
        var parts: [[UInt8]] = [Array(data)]
        for part in data.split(separator: 0x0A) where part.count < data.count { parts.append(Array(part)) }
        return difference(parts)
    }

    public func difference(_ elements: [[UInt8]]) -> String? {
        let b = Self.reading(elements, jansson)
        for (name, d) in [("simdjson", simdjson), ("on-demand", onDemand)] {
            let a = Self.reading(elements, d)
            guard a != b else { continue }
            for (x, y) in zip(a, b) where x != y { return "\(name): \(x)\njansson:   \(y)" }
            return "\(name): \(a.count) lines, jansson: \(b.count)"
        }
        return nil
    }

    /// Everything a later stage can see of a decoded batch, as text.
    public static func reading(_ elements: [[UInt8]], _ d: JSONDecodeTransform) -> [String] {
        var p = PayloadBatch()
        for (i, e) in elements.enumerated() { p.append(e, origin: UInt16(i % 3)) }
        var batch = Batch(payloads: p)
        d.process(&batch, worker: 0)
        let s = batch.samples
        var out: [String] = []
        for (i, r) in s.records.enumerated() {
            let labels = s.labels(at: i).map { "\($0.name)=\(Array($0.value.utf8))" }
            let e = s.exemplar(of: r).map { e in
                "\(s.labels[e.labelRange].map { s.string($0.name) + "=" + s.string($0.value) }) \(e.value.bitPattern) \(e.timestamp.bitPattern)"
            } ?? "-"
            out.append("\(r.type) \(r.shape) \(r.origin) \(r.value.bitPattern) \(Array(s.name(at: i).utf8)) [\(s.string(r.help))] \(labels) "
                       + "\(s.numbers(r.buckets).map(\.bitPattern)) \(s.numbers(r.quantiles).map(\.bitPattern)) "
                           + "\(s.numbers(r.epsilons).map(\.bitPattern)) \(e)")
        }
        for e in batch.drops.entries { out.append("drop \(e.origin) \(e.reason.name) \(e.count)") }
        out.append("notes \(batch.drops.summary)")
        return out
    }
}
