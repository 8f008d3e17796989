import Pipeline
#if canImport(Glibc)
import Glibc
#endif

/// A sample's series key: the exposition label text (so it is also the render
/// prefix), labels in name order (a series is its label set), empty values left out
/// (an empty value is no label). Labels usually arrive sorted: then nothing is sorted.
/// Written with pointer stores into a reused buffer — the sink's one thread builds one
/// per sample, so array appends (a uniqueness and a capacity check each) showed up.
enum SeriesKey {
    /// Writes the key of `r` into `buffer` (grown when short) and returns its length.
    @inline(__always)
    static func write(_ r: SampleRecord, batch s: SampleBatch, arena: UnsafeRawBufferPointer, order: inout [Int],
                      into buffer: inout [UInt8]) -> Int {
        order.removeAll(keepingCapacity: true)
        var sorted = true
        var bound = 0
        for l in r.labelRange where s.labels[l].value.count > 0 {
            if let last = order.last, !precedes(slice(arena, s.labels[last].name), slice(arena, s.labels[l].name)) { sorted = false }
            order.append(l)
            bound += Int(s.labels[l].name.count) + 2 * Int(s.labels[l].value.count) + 4   // `,` `=` `"` `"`, a value escaped at most doubles
        }
        if !sorted { order.sort { precedes(slice(arena, s.labels[$0].name), slice(arena, s.labels[$1].name)) } }
        if buffer.count < bound { buffer = [UInt8](repeating: 0, count: max(bound, 2 * buffer.count, 256)) }
        return buffer.withUnsafeMutableBytes { out in
            guard let base = out.baseAddress else { return 0 }
            var n = 0
            for l in order {
                if n > 0 { base.storeBytes(of: 0x2C, toByteOffset: n, as: UInt8.self); n += 1 }
                let name = slice(arena, s.labels[l].name)
                memcpy(base + n, name.baseAddress!, name.count)
                n += name.count
                base.storeBytes(of: 0x223D, toByteOffset: n, as: UInt16.self)   // `="` (little-endian)
                n += 2
                let value = slice(arena, s.labels[l].value)
                if value.contains(where: { $0 == 0x5C || $0 == 0x22 || $0 == 0x0A }) {
                    for c in value {
                        switch c {
                        case 0x5C: base.storeBytes(of: 0x5C5C, toByteOffset: n, as: UInt16.self); n += 2
                        case 0x22: base.storeBytes(of: 0x225C, toByteOffset: n, as: UInt16.self); n += 2
                        case 0x0A: base.storeBytes(of: 0x6E5C, toByteOffset: n, as: UInt16.self); n += 2
                        default: base.storeBytes(of: c, toByteOffset: n, as: UInt8.self); n += 1
                        }
                    }
                } else {
                    memcpy(base + n, value.baseAddress!, value.count)
                    n += value.count
                }
                base.storeBytes(of: 0x22, toByteOffset: n, as: UInt8.self)
                n += 1
            }
            return n
        }
    }

    /// Byte order of two label names (memcmp, then the shorter first).
    @inline(__always)
    static func precedes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        let c = memcmp(a.baseAddress!, b.baseAddress!, min(a.count, b.count))
        return c != 0 ? c < 0 : a.count < b.count
    }
}
