import Foundation

/// `ExportMetricsServiceRequest` from OTLP/JSON: protobuf's JSON mapping with the
/// OTLP rules — lowerCamelCase keys (the proto names accepted too), 64-bit integers
/// as strings or numbers, enums as integers (names accepted), trace and span ids in
/// hex, unknown keys ignored.
enum OTLPJSON {
    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    static func decode(_ body: [UInt8]) throws(Malformed) -> OTLPExport {
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]) } catch {
            throw Malformed(description: "not JSON: \((error as NSError).userInfo[NSDebugDescriptionErrorKey] ?? error.localizedDescription)")
        }
        guard let o = root as? [String: Any] else { throw Malformed(description: "the body is not a JSON object") }
        var export = OTLPExport()
        for rm in try list(o, "resourceMetrics") {
            var out = OTLPResourceMetrics()
            if let res = try object(rm, "resource") { out.attributes = try attributes(res, "attributes") }
            for sm in try list(rm, "scopeMetrics") {
                var scope = OTLPScopeMetrics()
                if let s = try object(sm, "scope") { scope.name = try string(s, "name"); scope.version = try string(s, "version") }
                for m in try list(sm, "metrics") { scope.metrics.append(try metric(m)) }
                out.scopes.append(scope)
            }
            export.resources.append(out)
        }
        return export
    }

    private static func metric(_ m: [String: Any]) throws(Malformed) -> OTLPMetric {
        var out = OTLPMetric()
        out.name = try string(m, "name")
        out.description = try string(m, "description")
        out.unit = try string(m, "unit")
        let kinds: [(String, OTLPMetric.Kind)] = [("gauge", .gauge), ("sum", .sum), ("histogram", .histogram),
                                                   ("exponentialHistogram", .exponentialHistogram), ("summary", .summary)]
        for (key, kind) in kinds {
            guard let data = try object(m, key) else { continue }
            guard out.kind == nil else { throw Malformed(description: "metric `\(out.name)` has two kinds of data") }
            out.kind = kind
            out.temporality = try temporality(data)
            out.monotonic = try bool(data, "isMonotonic")
            for p in try list(data, "dataPoints") { out.points.append(try point(p, kind: kind)) }
        }
        return out
    }

    private static func point(_ p: [String: Any], kind: OTLPMetric.Kind) throws(Malformed) -> OTLPPoint {
        var out = OTLPPoint()
        out.attributes = try attributes(p, "attributes")
        out.startTime = try uint(p, "startTimeUnixNano") ?? 0
        out.time = try uint(p, "timeUnixNano") ?? 0
        out.flags = UInt32(truncatingIfNeeded: try uint(p, "flags") ?? 0)
        switch kind {
        case .gauge, .sum:
            if let d = try double(p, "asDouble") { out.value = d; out.hasValue = true }
            if let i = try int(p, "asInt") { out.value = Double(i); out.hasValue = true }
        default:
            out.count = try uint(p, "count") ?? 0
            if let s = try double(p, "sum") { out.value = s; out.hasValue = true }
        }
        switch kind {
        case .histogram:
            out.bucketCounts = try list(p, "bucketCounts", limit: OTLPLimits.maxBuckets + 1) { v throws(Malformed) in
                try uintValue(v, "bucketCounts")
            }
            out.bounds = try list(p, "explicitBounds", limit: OTLPLimits.maxBuckets) { v throws(Malformed) in try doubleValue(v, "explicitBounds") }
        case .exponentialHistogram:
            out.scale = try int(p, "scale") ?? 0
            out.zeroCount = try uint(p, "zeroCount") ?? 0
            out.zeroThreshold = try double(p, "zeroThreshold") ?? 0
            for (key, negative) in [("positive", false), ("negative", true)] {
                guard let b = try object(p, key) else { continue }
                let offset = try int(b, "offset") ?? 0
                let counts = try list(b, "bucketCounts", limit: OTLPLimits.maxBuckets) { v throws(Malformed) in try uintValue(v, "bucketCounts") }
                if negative { out.negativeOffset = offset; out.negative = counts } else { out.positiveOffset = offset; out.positive = counts }
            }
        case .summary:
            for q in try list(p, "quantileValues") {
                out.quantiles.append((try double(q, "quantile") ?? 0, try double(q, "value") ?? 0))
                guard out.quantiles.count <= OTLPLimits.maxQuantiles else {
                    throw Malformed(description: "more than \(OTLPLimits.maxQuantiles) quantiles")
                }
            }
        default: break
        }
        for e in try list(p, "exemplars") {
            var x = OTLPExemplar()
            x.attributes = try attributes(e, "filteredAttributes")
            x.time = try uint(e, "timeUnixNano") ?? 0
            if let d = try double(e, "asDouble") { x.value = d }
            if let i = try int(e, "asInt") { x.value = Double(i) }
            x.traceID = hexBytes(try string(e, "traceId"))
            x.spanID = hexBytes(try string(e, "spanId"))
            out.exemplars.append(x)
        }
        return out
    }

    // MARK: Fields

    /// The value of `key`, or of its proto name (`resource_metrics`).
    private static func value(_ o: [String: Any], _ key: String) -> Any? {
        if let v = o[key], !(v is NSNull) { return v }
        var snake = ""
        for c in key { if c.isUppercase { snake += "_" + c.lowercased() } else { snake.append(c) } }
        if let v = o[snake], !(v is NSNull) { return v }
        return nil
    }

    private static func object(_ o: [String: Any], _ key: String) throws(Malformed) -> [String: Any]? {
        guard let v = value(o, key) else { return nil }
        guard let m = v as? [String: Any] else { throw Malformed(description: "`\(key)` is not an object") }
        return m
    }

    private static func list(_ o: [String: Any], _ key: String) throws(Malformed) -> [[String: Any]] {
        guard let v = value(o, key) else { return [] }
        guard let a = v as? [Any] else { throw Malformed(description: "`\(key)` is not an array") }
        var out: [[String: Any]] = []
        for item in a {
            guard let m = item as? [String: Any] else { throw Malformed(description: "an element of `\(key)` is not an object") }
            out.append(m)
        }
        return out
    }

    private static func list<T>(_ o: [String: Any], _ key: String, limit: Int, _ each: (Any) throws(Malformed) -> T) throws(Malformed) -> [T] {
        guard let v = value(o, key) else { return [] }
        guard let a = v as? [Any] else { throw Malformed(description: "`\(key)` is not an array") }
        guard a.count <= limit else { throw Malformed(description: "`\(key)` has more than \(limit) entries") }
        var out: [T] = []
        for item in a { out.append(try each(item)) }
        return out
    }

    private static func string(_ o: [String: Any], _ key: String) throws(Malformed) -> String {
        guard let v = value(o, key) else { return "" }
        guard let s = v as? String else { throw Malformed(description: "`\(key)` is not a string") }
        return s
    }

    private static func bool(_ o: [String: Any], _ key: String) throws(Malformed) -> Bool {
        guard let v = value(o, key) else { return false }
        if let b = v as? Bool { return b }
        throw Malformed(description: "`\(key)` is not a boolean")
    }

    private static func temporality(_ o: [String: Any]) throws(Malformed) -> OTLPTemporality {
        guard let v = value(o, "aggregationTemporality") else { return .unspecified }
        if let s = v as? String {
            switch s {
            case "AGGREGATION_TEMPORALITY_DELTA", "1": return .delta
            case "AGGREGATION_TEMPORALITY_CUMULATIVE", "2": return .cumulative
            default: return .unspecified
            }
        }
        return OTLPTemporality(rawValue: Int(try intValue(v, "aggregationTemporality"))) ?? .unspecified
    }

    private static func uint(_ o: [String: Any], _ key: String) throws(Malformed) -> UInt64? {
        guard let v = value(o, key) else { return nil }
        return try uintValue(v, key)
    }

    private static func int(_ o: [String: Any], _ key: String) throws(Malformed) -> Int64? {
        guard let v = value(o, key) else { return nil }
        return try intValue(v, key)
    }

    private static func double(_ o: [String: Any], _ key: String) throws(Malformed) -> Double? {
        guard let v = value(o, key) else { return nil }
        return try doubleValue(v, key)
    }

    private static func uintValue(_ v: Any, _ key: String) throws(Malformed) -> UInt64 {
        if let s = v as? String, let u = UInt64(s) { return u }
        if let n = v as? NSNumber, !(v is String), let u = UInt64(exactly: n.doubleValue) ?? UInt64(exactly: n.uint64Value) { return u }
        throw Malformed(description: "`\(key)` is not an unsigned integer")
    }

    private static func intValue(_ v: Any, _ key: String) throws(Malformed) -> Int64 {
        if let s = v as? String, let i = Int64(s) { return i }
        if let n = v as? NSNumber, !(v is String), let i = Int64(exactly: n.doubleValue) { return i }
        throw Malformed(description: "`\(key)` is not an integer")
    }

    private static func doubleValue(_ v: Any, _ key: String) throws(Malformed) -> Double {
        if let s = v as? String {
            switch s {
            case "NaN": return .nan
            case "Infinity": return .infinity
            case "-Infinity": return -.infinity
            default: if let d = Double(s) { return d }
            }
        }
        if let n = v as? NSNumber, !(v is String) { return n.doubleValue }
        throw Malformed(description: "`\(key)` is not a number")
    }

    private static func attributes(_ o: [String: Any], _ key: String) throws(Malformed) -> OTLPAttributes {
        try list(o, key).map { kv throws(Malformed) in (try string(kv, "key"), try anyValue(value(kv, "value"), depth: 0).text) }
    }

    /// The label text of an `AnyValue`, and whether it was a string (quoted inside arrays).
    private static func anyValue(_ v: Any?, depth: Int) throws(Malformed) -> (text: String, isString: Bool) {
        guard depth < 16 else { throw Malformed(description: "attribute values nested deeper than 16") }
        guard let o = v as? [String: Any] else { return ("", false) }
        if let s = value(o, "stringValue") {
            guard let s = s as? String else { throw Malformed(description: "`stringValue` is not a string") }
            return (s, true)
        }
        if value(o, "boolValue") != nil { return (try bool(o, "boolValue") ? "true" : "false", false) }
        if let i = try int(o, "intValue") { return (String(i), false) }
        if let d = try double(o, "doubleValue") { return (OTLPText.double(d), false) }
        if let b = value(o, "bytesValue") { return ((b as? String) ?? "", true) }
        if let a = try object(o, "arrayValue") {
            let items = try list(a, "values").map { x throws(Malformed) in
                let (t, s) = try anyValue(x, depth: depth + 1)
                return s ? OTLPText.jsonString(t) : t
            }
            return ("[" + items.joined(separator: ",") + "]", false)
        }
        if let m = try object(o, "kvlistValue") {
            let items = try list(m, "values").map { kv throws(Malformed) in
                "\(OTLPText.jsonString(try string(kv, "key"))):\(OTLPText.jsonString(try anyValue(value(kv, "value"), depth: depth + 1).text))"
            }
            return ("{" + items.joined(separator: ",") + "}", false)
        }
        return ("", false)
    }

    private static func hexBytes(_ s: String) -> [UInt8] {
        let u = Array(s.utf8)
        guard u.count % 2 == 0 else { return [] }
        var out: [UInt8] = []
        var i = 0
        while i < u.count {
            guard let b = UInt8(String(decoding: u[i...(i + 1)], as: UTF8.self), radix: 16) else { return [] }
            out.append(b); i += 2
        }
        return out
    }
}
