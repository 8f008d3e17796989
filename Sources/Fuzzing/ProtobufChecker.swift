/// Checks that bytes are a valid length-delimited stream of
/// `io.prometheus.client.MetricFamily` as the gateway writes it: every message
/// and field well-formed and known (field number and wire type), strings UTF-8,
/// names valid, one family per name, each metric of its family's type; classic
/// buckets rising and cumulative up to `sample_count`; native spans and deltas
/// consistent (as many deltas as the spans are long, no count below zero, zero
/// count and bucket counts adding up to `sample_count`); exemplar labels at most
/// 128 characters. Returns the first problem, or nil.
public enum ProtobufChecker {
    struct Bad: Error { var reason: String }

    /// One field of a message: its number and, by wire type, its value.
    enum Value { case varint(UInt64), fixed64(UInt64), bytes(ArraySlice<UInt8>) }

    static func fields(_ data: ArraySlice<UInt8>) throws(Bad) -> [(field: Int, value: Value)] {
        var out: [(Int, Value)] = []
        var r = data
        while !r.isEmpty {
            let tag = try varint(&r)
            let field = Int(tag >> 3)
            guard field > 0 else { throw Bad(reason: "field number 0") }
            switch tag & 7 {
            case 0: out.append((field, .varint(try varint(&r))))
            case 1:
                guard r.count >= 8 else { throw Bad(reason: "truncated fixed64") }
                var v: UInt64 = 0
                for (i, b) in r.prefix(8).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
                r = r.dropFirst(8)
                out.append((field, .fixed64(v)))
            case 2:
                let n = try varint(&r)
                guard n <= UInt64(r.count) else { throw Bad(reason: "length beyond the message") }
                out.append((field, .bytes(r.prefix(Int(n)))))
                r = r.dropFirst(Int(n))
            default: throw Bad(reason: "wire type \(tag & 7)")
            }
        }
        return out
    }

    static func varint(_ r: inout ArraySlice<UInt8>) throws(Bad) -> UInt64 {
        var v: UInt64 = 0, shift: UInt64 = 0
        while let b = r.first {
            r = r.dropFirst()
            guard shift < 64 else { throw Bad(reason: "varint too long") }
            v |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return v }
            shift += 7
        }
        throw Bad(reason: "truncated varint")
    }

    public static func problem(in data: [UInt8]) -> String? {
        var r = data[...]
        var names: Set<String> = []
        do throws(Bad) {
            while !r.isEmpty {
                let n = try varint(&r)
                guard n <= UInt64(r.count) else { throw Bad(reason: "family length beyond the stream") }
                let name = try family(r.prefix(Int(n)))
                guard names.insert(name).inserted else { throw Bad(reason: "family `\(name)` twice") }
                r = r.dropFirst(Int(n))
            }
        } catch {
            return error.reason
        }
        return nil
    }

    static func family(_ data: ArraySlice<UInt8>) throws(Bad) -> String {
        var name: String?, type: UInt64 = 0
        var metrics: [ArraySlice<UInt8>] = []
        for (field, value) in try fields(data) {
            switch (field, value) {
            case (1, .bytes(let b)): name = try string(b)
            case (2, .bytes(let b)): _ = try string(b)
            case (3, .varint(let v)): guard v <= 5 else { throw Bad(reason: "type \(v)") }; type = v
            case (4, .bytes(let b)): metrics.append(b)
            default: throw Bad(reason: "MetricFamily field \(field)")
            }
        }
        guard let name, ExpositionChecker.isMetricName(name) else { throw Bad(reason: "bad family name") }
        for m in metrics { try metric(m, type: type, family: name) }
        return name
    }

    static func metric(_ data: ArraySlice<UInt8>, type: UInt64, family: String) throws(Bad) {
        var labels: Set<String> = []
        var bodies = 0
        for (field, value) in try fields(data) {
            guard case .bytes(let b) = value else { throw Bad(reason: "Metric field \(field) not a message") }
            switch field {
            case 1:
                let (n, _) = try labelPair(b)
                guard labels.insert(n).inserted else { throw Bad(reason: "label `\(n)` twice in `\(family)`") }
            case 2, 3, 4, 7:
                bodies += 1
                let expected: [UInt64: Int] = [0: 3, 1: 2, 2: 4, 4: 7]
                guard expected[type] == field else { throw Bad(reason: "a metric of another type in `\(family)`") }
                switch field {
                case 3: try counter(b)
                case 4: try summary(b)
                case 7: try histogram(b)
                default: for (f, _) in try fields(b) where f != 1 { throw Bad(reason: "Gauge field \(f)") }
                }
            default: throw Bad(reason: "Metric field \(field)")
            }
        }
        guard bodies == 1 else { throw Bad(reason: "\(bodies) values in a metric of `\(family)`") }
    }

    static func labelPair(_ data: ArraySlice<UInt8>) throws(Bad) -> (String, String) {
        var name = "", value = ""
        for (field, v) in try fields(data) {
            guard case .bytes(let b) = v, field == 1 || field == 2 else { throw Bad(reason: "LabelPair field \(field)") }
            if field == 1 { name = try string(b) } else { value = try string(b) }
        }
        guard ExpositionChecker.isLabelName(Substring(name)) else { throw Bad(reason: "bad label name `\(name)`") }
        return (name, value)
    }

    static func counter(_ data: ArraySlice<UInt8>) throws(Bad) {
        for (field, v) in try fields(data) {
            switch (field, v) {
            case (1, .fixed64(let bits)): guard Double(bitPattern: bits) >= 0 else { throw Bad(reason: "negative counter") }
            case (2, .bytes(let b)): try exemplar(b)
            default: throw Bad(reason: "Counter field \(field)")
            }
        }
    }

    static func summary(_ data: ArraySlice<UInt8>) throws(Bad) {
        for (field, v) in try fields(data) {
            switch (field, v) {
            case (1, .varint), (2, .fixed64): break
            case (3, .bytes(let b)):
                for (f, q) in try fields(b) { guard case .fixed64 = q, f == 1 || f == 2 else { throw Bad(reason: "Quantile field \(f)") } }
            default: throw Bad(reason: "Summary field \(field)")
            }
        }
    }

    static func histogram(_ data: ArraySlice<UInt8>) throws(Bad) {
        var count: UInt64 = 0, zeroCount: UInt64 = 0
        var lastBound = -Double.infinity, lastCumulative: UInt64 = 0
        var spans: [[(Int64, UInt64)]] = [[], []], deltas: [[Int64]] = [[], []]
        var native = false
        func sint(_ v: UInt64) -> Int64 { Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1))) }
        for (field, v) in try fields(data) {
            switch (field, v) {
            case (1, .varint(let n)): count = n
            case (2, .fixed64): break
            case (3, .bytes(let b)):
                var cumulative: UInt64 = 0, bound = Double.nan
                for (f, bv) in try fields(b) {
                    switch (f, bv) {
                    case (1, .varint(let n)): cumulative = n
                    case (2, .fixed64(let bits)): bound = Double(bitPattern: bits)
                    case (3, .bytes(let e)): try exemplar(e)
                    default: throw Bad(reason: "Bucket field \(f)")
                    }
                }
                guard bound > lastBound else { throw Bad(reason: "bucket bounds not rising") }
                guard cumulative >= lastCumulative else { throw Bad(reason: "bucket counts not cumulative") }
                (lastBound, lastCumulative) = (bound, cumulative)
            case (5, .varint(let s)):
                native = true
                guard (-4...8).contains(sint(s)) else { throw Bad(reason: "schema \(sint(s))") }
            case (6, .fixed64(let bits)): guard Double(bitPattern: bits) >= 0 else { throw Bad(reason: "negative zero threshold") }
            case (7, .varint(let n)): zeroCount = n
            case (9, .bytes(let b)), (12, .bytes(let b)):
                var offset: Int64 = 0, length: UInt64 = 0
                for (f, sv) in try fields(b) {
                    switch (f, sv) {
                    case (1, .varint(let o)): offset = sint(o)
                    case (2, .varint(let l)): length = l
                    default: throw Bad(reason: "BucketSpan field \(f)")
                    }
                }
                spans[field == 9 ? 0 : 1].append((offset, length))
            case (10, .varint(let d)), (13, .varint(let d)): deltas[field == 10 ? 0 : 1].append(sint(d))
            case (16, .bytes(let e)): try exemplar(e, needsTimestamp: true)
            default: throw Bad(reason: "Histogram field \(field)")
            }
        }
        guard lastCumulative <= count else { throw Bad(reason: "a bucket above sample_count") }
        guard native else { return }
        var total = zeroCount
        for side in 0..<2 {
            guard spans[side].reduce(0, { $0 + $1.1 }) == UInt64(deltas[side].count) else { throw Bad(reason: "spans and deltas disagree") }
            var c: Int64 = 0
            for d in deltas[side] {
                c += d
                guard c >= 0 else { throw Bad(reason: "a native bucket below zero") }
                total += UInt64(c)
            }
        }
        guard total == count else { throw Bad(reason: "native buckets hold \(total), sample_count is \(count)") }
    }

    static func exemplar(_ data: ArraySlice<UInt8>, needsTimestamp: Bool = false) throws(Bad) {
        var characters = 0, timestamp = false
        for (field, v) in try fields(data) {
            switch (field, v) {
            case (1, .bytes(let b)):
                let (n, value) = try labelPair(b)
                characters += n.unicodeScalars.count + value.unicodeScalars.count
            case (2, .fixed64): break
            case (3, .bytes(let b)):
                timestamp = true
                for (f, tv) in try fields(b) { guard case .varint = tv, f == 1 || f == 2 else { throw Bad(reason: "Timestamp field \(f)") } }
            default: throw Bad(reason: "Exemplar field \(field)")
            }
        }
        guard characters <= 128 else { throw Bad(reason: "exemplar labels of \(characters) characters") }
        guard timestamp || !needsTimestamp else { throw Bad(reason: "a native histogram's exemplar without a timestamp") }
    }

    static func string(_ b: ArraySlice<UInt8>) throws(Bad) -> String {
        guard let s = String(validating: b, as: UTF8.self) else { throw Bad(reason: "a string that is not UTF-8") }
        return s
    }
}
