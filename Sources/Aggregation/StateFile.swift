import CZlib
import Pipeline
#if canImport(Glibc)
import Glibc
#endif

/// The aggregate as one file: a shard's state in Redis, and the `prometheus`
/// sink's state file up to version 2 (still read; written since as a manifest with
/// segments, `StateManifest`, which holds its families in this format's records).
///
/// Format (little-endian): `PSGSTATE`, version (UInt32), payload length
/// (UInt64), CRC-32 of the payload (UInt32), payload. The payload holds the
/// wall-clock time it was taken, the positions of the source streams it contains,
/// then every family with its series (values, counts, buckets, summary windows,
/// time since the last update — which keeps counting while the gateway is down;
/// since version 2 also native-histogram buckets and exemplars). Version 1 files
/// are still read.
/// A file that is short, longer, of another magic or version, or whose checksum
/// does not match is refused whole — never half-loaded.
///
/// Writing: to `<file>.tmp` in the same directory, `fsync`, `rename` over the
/// file, `fsync` the directory. A crash at any point leaves either the old file or
/// the new one, complete.
public enum StateFile {
    static let magic = Array("PSGSTATE".utf8)
    static let version: UInt32 = 2
    static let headerSize = 8 + 4 + 8 + 4

    public struct Corrupt: Error, CustomStringConvertible { public var description: String }

    // MARK: Encoding

    public static func encode(_ state: StoreState) -> [UInt8] {
        var p = Writer()
        p.u64(state.writtenAt)
        p.u32(UInt32(state.positions.count))
        for (stream, through) in state.positions { p.bytes(Array(stream.utf8)); p.u64(through) }
        p.u32(UInt32(state.families.count))
        for f in state.families { encode(f, into: &p) }
        return frame(version: version, payload: p.out)
    }

    /// Magic, version, payload length and CRC-32, then the payload.
    static func frame(version: UInt32, payload: [UInt8]) -> [UInt8] {
        var out = Writer()
        out.raw(magic)
        out.u32(version)
        out.u64(UInt64(payload.count))
        out.u32(checksum(payload[...]))
        out.raw(payload)
        return out.out
    }

    /// The version of a framed file (nil: too short or not ours); decoding checks the rest.
    static func version(of bytes: [UInt8]) -> UInt32? {
        guard bytes.count >= headerSize, Array(bytes[0..<8]) == magic else { return nil }
        var h = Reader(bytes[8..<12])
        return try? h.u32()
    }

    /// The payload of a framed file whose version is one of `versions`.
    static func unframe(_ bytes: [UInt8], versions: ClosedRange<UInt32>) throws(Corrupt) -> (version: UInt32, payload: [UInt8]) {
        guard bytes.count >= headerSize else { throw Corrupt(description: "truncated (\(bytes.count) bytes, no complete header)") }
        guard Array(bytes[0..<8]) == magic else { throw Corrupt(description: "not a prom-stream-gateway state file") }
        var h = Reader(bytes[8..<headerSize])
        let v = try h.u32(), length = try h.u64(), sum = try h.u32()
        guard versions.contains(v) else {
            throw Corrupt(description: "version \(v), this build reads versions \(versions.lowerBound) to \(StateManifest.version)")
        }
        guard UInt64(bytes.count - headerSize) == length else {
            throw Corrupt(description: "\(bytes.count - headerSize) payload bytes, the header says \(length) (truncated or appended to)")
        }
        let payload = Array(bytes[headerSize...])
        guard checksum(payload[...]) == sum else { throw Corrupt(description: "checksum mismatch") }
        return (v, payload)
    }

    /// One family as both formats hold it: the single file's payload and a segment's record.
    static func encode(_ f: StoreState.FamilyState, into p: inout Writer) {
        p.bytes(f.name)
        p.u8(f.type.rawValue)
        p.bytes(f.help)
        p.doubles(f.bounds)
        p.u32(UInt32(f.objectives.count))
        for (q, e) in f.objectives { p.f64(q); p.f64(e) }
        if let n = f.native {
            p.u8(1); p.u32(UInt32(bitPattern: Int32(n.schema))); p.f64(n.zeroThreshold); p.u32(UInt32(n.maxBuckets))
        } else {
            p.u8(0)
        }
        p.u32(UInt32(f.series.count))
        for s in f.series {
            p.bytes(s.key)
            p.f64(s.value)
            if f.type == .histogram || f.type == .summary { p.f64(s.count) }
            if f.type == .histogram { p.doubles(Array(s.buckets)) }
            if let age = s.age { p.u8(1); p.u64(age) } else { p.u8(0) }
            if f.type == .summary {
                if let w = s.window {
                    p.u8(1)
                    p.u32(UInt32(w.head))
                    p.u64(w.rotatesIn)
                    p.u32(UInt32(w.streams.count))
                    for stream in w.streams {
                        p.f64(stream.n)
                        p.u32(UInt32(stream.tuples.count))
                        for t in stream.tuples { p.f64(t.value); p.f64(t.width); p.f64(t.delta) }
                        p.doubles(w.unmerged(stream))
                    }
                } else {
                    p.u8(0)
                }
            }
            if f.native != nil {
                let n = s.native ?? NativeHistogram(schema: f.native!.schema)
                p.u8(UInt8(bitPattern: n.schema))
                p.u64(n.zeroCount)
                for side in [n.positive, n.negative] {
                    p.u32(UInt32(side.count))
                    for (k, c) in zip(side.keys, side.counts) { p.u32(UInt32(bitPattern: k)); p.u64(c) }
                }
            }
            if f.type == .counter || f.type == .histogram {
                p.u32(UInt32(s.exemplars.count))
                for e in s.exemplars {
                    if let e { p.u8(1); p.bytes(e.labels); p.f64(e.value); p.f64(e.timestamp) } else { p.u8(0) }
                }
            }
        }
    }

    static func checksum(_ b: ArraySlice<UInt8>) -> UInt32 {
        b.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
    }

    // MARK: Decoding

    public static func decode(_ bytes: [UInt8]) throws(Corrupt) -> StoreState {
        let (v, payload) = try unframe(bytes, versions: 1...version)
        var r = Reader(payload[...])
        var state = StoreState()
        state.writtenAt = try r.u64()
        for _ in 0..<(try r.count()) {
            let name = String(decoding: try r.bytes(), as: UTF8.self)
            state.positions.append((name, try r.u64()))
        }
        for _ in 0..<(try r.count()) { state.families.append(try decodeFamily(&r, version: v)) }
        guard r.atEnd else { throw Corrupt(description: "trailing bytes after the last family") }
        return state
    }

    static func decodeFamily(_ r: inout Reader, version v: UInt32) throws(Corrupt) -> StoreState.FamilyState {
        let name = try r.bytes()
        guard let type = MetricType(rawValue: try r.u8()) else { throw Corrupt(description: "unknown metric type") }
        var f = StoreState.FamilyState(name: name, type: type, help: try r.bytes(), bounds: try r.doubles(), objectives: [], series: [])
        for _ in 0..<(try r.count()) { f.objectives.append((try r.f64(), try r.f64())) }
        if v >= 2, try r.u8() == 1 {
            let schema = Int(Int32(bitPattern: try r.u32())), zero = try r.f64(), maxBuckets = Int(try r.u32())
            guard (-4...8).contains(schema) else { throw Corrupt(description: "native histogram schema \(schema)") }
            f.native = NativeHistogramOptions(schema: schema, zeroThreshold: zero, maxBuckets: maxBuckets)
        }
        for _ in 0..<(try r.count()) {
            var s = StoreState.Series(key: try r.bytes(), value: try r.f64(), count: 0, buckets: [], age: nil, window: nil)
            if type == .histogram || type == .summary { s.count = try r.f64() }
            if type == .histogram { s.buckets = try r.doubles()[...] }
            if try r.u8() == 1 { s.age = try r.u64() }
            if type == .summary, try r.u8() == 1 {
                let head = Int(try r.u32()), rotatesIn = try r.u64()
                var streams: [QuantileStream] = []
                for _ in 0..<(try r.count()) {
                    let n = try r.f64()
                    var tuples: [QuantileStream.Tuple] = []
                    for _ in 0..<(try r.count()) { tuples.append(.init(value: try r.f64(), width: try r.f64(), delta: try r.f64())) }
                    streams.append(QuantileStream(targets: f.objectives, tuples: tuples, buffer: try r.doubles(), n: n))
                }
                s.window = SummaryWindow.State(streams: streams, head: head, rotatesIn: rotatesIn)
            }
            if v >= 2, f.native != nil {
                let schema = Int8(bitPattern: try r.u8())
                guard (-4...8).contains(schema) else { throw Corrupt(description: "native histogram schema \(schema)") }
                var n = NativeHistogram(schema: Int(schema))
                n.zeroCount = try r.u64()
                for side in 0..<2 {
                    var b = SparseBuckets()
                    for _ in 0..<(try r.count()) { b.keys.append(Int32(bitPattern: try r.u32())); b.counts.append(try r.u64()) }
                    guard zip(b.keys, b.keys.dropFirst()).allSatisfy({ $0 < $1 }) else {
                        throw Corrupt(description: "native buckets out of order")
                    }
                    if side == 0 { n.positive = b } else { n.negative = b }
                }
                s.native = n
            }
            if v >= 2, type == .counter || type == .histogram {
                for _ in 0..<(try r.count()) {
                    s.exemplars.append(try r.u8() == 1 ? Exemplar(labels: try r.bytes(), value: try r.f64(), timestamp: try r.f64()) : nil)
                }
            }
            f.series.append(s)
        }
        return f
    }

    // MARK: Files

    /// Writes `bytes` to `path` atomically and durably; throws the OS's reason.
    static func write(_ bytes: [UInt8], to path: String) throws(Corrupt) {
        let tmp = path + ".tmp"
        try create(bytes, at: tmp, flags: O_TRUNC)
        FaultInjection.point("snapshot_before_rename")
        guard rename(tmp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw Corrupt(description: "cannot rename \(tmp) to \(path): \(reason)")
        }
        syncDirectory(of: path)
    }

    /// Writes a file that is named by nothing yet (a segment, a temporary file) and
    /// `fsync`s it; a failure removes it. `O_EXCL` for a segment: never an old one.
    static func create(_ bytes: [UInt8], at path: String, flags: Int32 = O_EXCL) throws(Corrupt) {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0o600)
        guard fd >= 0 else { throw Corrupt(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        var written = 0
        let ok: Bool = bytes.withUnsafeBytes { raw in
            // In two halves, so that a test can crash between them.
            for end in [raw.count / 2, raw.count] {
                while written < end {
                    let n = Glibc.write(fd, raw.baseAddress! + written, end - written)
                    if n < 0 { if errno == EINTR { continue }; return false }
                    written += n
                }
                if end < raw.count { FaultInjection.point("snapshot_mid_write") }
            }
            return true
        }
        let writeErrno = errno
        if !ok || fsync(fd) != 0 {
            let reason = String(cString: strerror(ok ? errno : writeErrno))
            close(fd)
            unlink(path)
            throw Corrupt(description: "cannot write \(path): \(reason)")
        }
        close(fd)
    }

    /// Makes the directory's entries (a new name, a rename) durable.
    static func syncDirectory(of path: String) {
        let dfd = open(directory(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// The file's bytes; nil when it does not exist.
    static func read(_ path: String) throws(Corrupt) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw Corrupt(description: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw Corrupt(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { return out }
            out.append(contentsOf: chunk[0..<n])
        }
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let d = String(path[..<slash])
        return d.isEmpty ? "/" : d
    }

    // MARK: Little-endian primitives

    struct Writer {
        var out: [UInt8] = []
        mutating func raw(_ b: [UInt8]) { out.append(contentsOf: b) }
        mutating func u8(_ v: UInt8) { out.append(v) }
        mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        mutating func f64(_ v: Double) { u64(v.bitPattern) }
        mutating func bytes(_ b: [UInt8]) { u32(UInt32(b.count)); out.append(contentsOf: b) }
        mutating func doubles(_ d: [Double]) { u32(UInt32(d.count)); for x in d { f64(x) } }
    }

    struct Reader {
        var data: ArraySlice<UInt8>
        init(_ d: ArraySlice<UInt8>) { data = d }
        var atEnd: Bool { data.isEmpty }
        mutating func take(_ n: Int) throws(Corrupt) -> ArraySlice<UInt8> {
            guard n >= 0, data.count >= n else { throw Corrupt(description: "truncated inside the payload") }
            defer { data = data.dropFirst(n) }
            return data.prefix(n)
        }
        mutating func u8() throws(Corrupt) -> UInt8 { try take(1).first! }
        mutating func u32() throws(Corrupt) -> UInt32 {
            var v: UInt32 = 0
            for (i, b) in try take(4).enumerated() { v |= UInt32(b) << (8 * UInt32(i)) }
            return v
        }
        mutating func u64() throws(Corrupt) -> UInt64 {
            var v: UInt64 = 0
            for (i, b) in try take(8).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
            return v
        }
        mutating func f64() throws(Corrupt) -> Double { Double(bitPattern: try u64()) }
        /// A count, checked against what is left so a corrupt one cannot ask for terabytes.
        mutating func count() throws(Corrupt) -> Int {
            let n = Int(try u32())
            guard n <= data.count else { throw Corrupt(description: "a count beyond the file's end") }
            return n
        }
        mutating func bytes() throws(Corrupt) -> [UInt8] { Array(try take(try count())) }
        mutating func doubles() throws(Corrupt) -> [Double] {
            let n = try count()
            var out: [Double] = []
            out.reserveCapacity(n)
            for _ in 0..<n { out.append(try f64()) }
            return out
        }
    }
}
