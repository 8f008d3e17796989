import Foundation
import Pipeline

/// An export's protobuf body to the batch the source would emit (drops marked), for
/// the fuzz harness and the benchmark: the decoding and mapping without the server.
package struct OTLPDecoder: Sendable {
    private let mapping: OTLPMapping

    package init(resourceAttributes: [String] = [], streamTTL: Duration = .seconds(3600), maxStreams: Int = 100_000) {
        mapping = OTLPMapping(promoted: resourceAttributes, table: StreamTable(ttl: streamTTL, capacity: maxStreams, startedAt: 0))
    }

    /// Nil for a body that is not a well-formed export (the source answers 400).
    package func batch(protobuf body: UnsafeRawBufferPointer, origin: UInt16 = 0) -> Batch? {
        guard let export = try? OTLPProtobuf.decode(body) else { return nil }
        let result = mapping.map(export, origin: origin)
        var batch = Batch(samples: result.samples)
        for (i, reason) in result.drops { batch.drop(sample: i, reason: reason) }
        return batch
    }

    /// Cumulative streams held.
    package var streams: Int { mapping.table.count }
}

/// What the cumulative stream table costs: `streams` counter streams stepped into a
/// fresh table, RSS before and after (the benchmark's figure per stream).
package struct StreamTableProbe {
    package let bytesPerStream: Int

    package init(streams: Int) {
        func rss() -> Int {
            let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        let before = rss()
        let table = StreamTable(ttl: .seconds(3600), capacity: streams, startedAt: 0)
        for start in stride(from: 0, to: streams, by: 10_000) {
            let points = (start..<min(streams, start + 10_000)).map {
                (key: StreamKey(a: UInt64($0) &* 0x9E37_79B9_7F4A_7C15, b: UInt64($0)), start: UInt64(1), time: UInt64(2),
                 value: CumulativePoint.number(1))
            }
            table.step(points) { _, _ in }
        }
        bytesPerStream = (rss() - before) / max(1, table.count)
    }
}
