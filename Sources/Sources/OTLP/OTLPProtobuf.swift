import Pipeline

/// `ExportMetricsServiceRequest` from protobuf (opentelemetry-proto
/// `collector/metrics/v1`), field numbers as in `metrics/v1/metrics.proto`.
enum OTLPProtobuf {
    typealias Malformed = ProtoReader.Malformed

    static func decode(_ body: UnsafeRawBufferPointer) throws(Malformed) -> OTLPExport {
        var r = ProtoReader(body)
        var export = OTLPExport()
        while !r.isAtEnd {
            let (n, w) = try r.field()
            if n == 1 { try r.expect(w, .bytes, "resource_metrics"); var sub = try r.nested(); export.resources.append(try resourceMetrics(&sub)) }
            else { try r.skip(w) }
        }
        return export
    }

    private static func resourceMetrics(_ r: inout ProtoReader) throws(Malformed) -> OTLPResourceMetrics {
        var out = OTLPResourceMetrics()
        while !r.isAtEnd {
            let (n, w) = try r.field()
            switch n {
            case 1:
                try r.expect(w, .bytes, "resource")
                var res = try r.nested()
                while !res.isAtEnd {
                    let (m, v) = try res.field()
                    if m == 1 { try res.expect(v, .bytes, "attributes"); var kv = try res.nested(); out.attributes.append(try keyValue(&kv)) }
                    else { try res.skip(v) }
                }
            case 2: try r.expect(w, .bytes, "scope_metrics"); var sub = try r.nested(); out.scopes.append(try scopeMetrics(&sub))
            default: try r.skip(w)
            }
        }
        return out
    }

    private static func scopeMetrics(_ r: inout ProtoReader) throws(Malformed) -> OTLPScopeMetrics {
        var out = OTLPScopeMetrics()
        while !r.isAtEnd {
            let (n, w) = try r.field()
            switch n {
            case 1:
                try r.expect(w, .bytes, "scope")
                var scope = try r.nested()
                while !scope.isAtEnd {
                    let (m, v) = try scope.field()
                    switch m {
                    case 1: try scope.expect(v, .bytes, "scope.name"); out.name = try scope.string()
                    case 2: try scope.expect(v, .bytes, "scope.version"); out.version = try scope.string()
                    default: try scope.skip(v)
                    }
                }
            case 2: try r.expect(w, .bytes, "metrics"); var sub = try r.nested(); out.metrics.append(try metric(&sub))
            default: try r.skip(w)
            }
        }
        return out
    }

    private static func metric(_ r: inout ProtoReader) throws(Malformed) -> OTLPMetric {
        var out = OTLPMetric()
        while !r.isAtEnd {
            let (n, w) = try r.field()
            switch n {
            case 1: try r.expect(w, .bytes, "name"); out.name = try r.string()
            case 2: try r.expect(w, .bytes, "description"); out.description = try r.string()
            case 3: try r.expect(w, .bytes, "unit"); out.unit = try r.string()
            case 5, 7, 9, 10, 11:
                try r.expect(w, .bytes, "data")
                let kind: OTLPMetric.Kind = [5: .gauge, 7: .sum, 9: .histogram, 10: .exponentialHistogram, 11: .summary][n]!
                guard out.kind == nil || out.kind == kind else { throw Malformed(description: "metric `\(out.name)` has two kinds of data") }
                out.kind = kind
                var data = try r.nested()
                while !data.isAtEnd {
                    let (m, v) = try data.field()
                    switch m {
                    case 1: try data.expect(v, .bytes, "data_points"); var p = try data.nested(); out.points.append(try point(&p, kind: kind))
                    case 2 where kind != .gauge && kind != .summary:
                        try data.expect(v, .varint, "aggregation_temporality")
                        out.temporality = OTLPTemporality(rawValue: Int(truncatingIfNeeded: try data.varint())) ?? .unspecified
                    case 3 where kind == .sum: try data.expect(v, .varint, "is_monotonic"); out.monotonic = try data.varint() != 0
                    default: try data.skip(v)
                    }
                }
            default: try r.skip(w)
            }
        }
        return out
    }

    private static func point(_ r: inout ProtoReader, kind: OTLPMetric.Kind) throws(Malformed) -> OTLPPoint {
        var p = OTLPPoint()
        // The attributes', exemplars' and flags' numbers differ by point kind.
        let (attributes, exemplars, flags): (UInt64, UInt64, UInt64) = switch kind {
        case .gauge, .sum: (7, 5, 8)
        case .histogram: (9, 8, 10)
        case .exponentialHistogram: (1, 11, 10)
        case .summary: (7, 0, 8)
        }
        while !r.isAtEnd {
            let (n, w) = try r.field()
            switch n {
            case attributes: try r.expect(w, .bytes, "attributes"); var kv = try r.nested(); p.attributes.append(try keyValue(&kv))
            case exemplars where exemplars != 0: try r.expect(w, .bytes, "exemplars"); var e = try r.nested(); p.exemplars.append(try exemplar(&e))
            case flags: try r.expect(w, .varint, "flags"); p.flags = UInt32(truncatingIfNeeded: try r.varint())
            case 2: try r.expect(w, .fixed64, "start_time_unix_nano"); p.startTime = try r.fixed64()
            case 3: try r.expect(w, .fixed64, "time_unix_nano"); p.time = try r.fixed64()
            default:
                try pointField(&r, &p, kind: kind, number: n, wire: w)
            }
        }
        return p
    }

    private static func pointField(_ r: inout ProtoReader, _ p: inout OTLPPoint, kind: OTLPMetric.Kind, number n: UInt64,
                                   wire w: ProtoReader.WireType) throws(Malformed) {
        switch (kind, n) {
        case (.gauge, 4), (.sum, 4): try r.expect(w, .fixed64, "as_double"); p.value = try r.double(); p.hasValue = true
        case (.gauge, 6), (.sum, 6): try r.expect(w, .fixed64, "as_int"); p.value = Double(Int64(bitPattern: try r.fixed64())); p.hasValue = true
        case (.histogram, 4), (.exponentialHistogram, 4), (.summary, 4): try r.expect(w, .fixed64, "count"); p.count = try r.fixed64()
        case (.histogram, 5), (.exponentialHistogram, 5), (.summary, 5): try r.expect(w, .fixed64, "sum"); p.value = try r.double(); p.hasValue = true
        case (.histogram, 6): try r.appendFixed64(w, to: &p.bucketCounts, limit: OTLPLimits.maxBuckets + 1)
        case (.histogram, 7):
            var raw: [UInt64] = []
            try r.appendFixed64(w, to: &raw, limit: OTLPLimits.maxBuckets)
            p.bounds.append(contentsOf: raw.map { Double(bitPattern: $0) })
            guard p.bounds.count <= OTLPLimits.maxBuckets else { throw Malformed(description: "more than \(OTLPLimits.maxBuckets) bounds") }
        case (.exponentialHistogram, 6): try r.expect(w, .varint, "scale"); p.scale = try r.sint32()
        case (.exponentialHistogram, 7): try r.expect(w, .fixed64, "zero_count"); p.zeroCount = try r.fixed64()
        case (.exponentialHistogram, 14): try r.expect(w, .fixed64, "zero_threshold"); p.zeroThreshold = try r.double()
        case (.exponentialHistogram, 8), (.exponentialHistogram, 9):
            try r.expect(w, .bytes, "buckets")
            var b = try r.nested()
            var offset: Int64 = 0, counts: [UInt64] = []
            while !b.isAtEnd {
                let (m, v) = try b.field()
                switch m {
                case 1: try b.expect(v, .varint, "offset"); offset = try b.sint32()
                case 2: try b.appendVarints(v, to: &counts, limit: OTLPLimits.maxBuckets)
                default: try b.skip(v)
                }
            }
            if n == 8 { p.positiveOffset = offset; p.positive = counts } else { p.negativeOffset = offset; p.negative = counts }
        case (.summary, 6):
            try r.expect(w, .bytes, "quantile_values")
            var q = try r.nested()
            var quantile = 0.0, value = 0.0
            while !q.isAtEnd {
                let (m, v) = try q.field()
                switch m {
                case 1: try q.expect(v, .fixed64, "quantile"); quantile = try q.double()
                case 2: try q.expect(v, .fixed64, "value"); value = try q.double()
                default: try q.skip(v)
                }
            }
            p.quantiles.append((quantile, value))
            guard p.quantiles.count <= OTLPLimits.maxQuantiles else { throw Malformed(description: "more than \(OTLPLimits.maxQuantiles) quantiles") }
        default: try r.skip(w)
        }
    }

    private static func exemplar(_ r: inout ProtoReader) throws(Malformed) -> OTLPExemplar {
        var e = OTLPExemplar()
        while !r.isAtEnd {
            let (n, w) = try r.field()
            switch n {
            case 7: try r.expect(w, .bytes, "filtered_attributes"); var kv = try r.nested(); e.attributes.append(try keyValue(&kv))
            case 2: try r.expect(w, .fixed64, "time_unix_nano"); e.time = try r.fixed64()
            case 3: try r.expect(w, .fixed64, "as_double"); e.value = try r.double()
            case 6: try r.expect(w, .fixed64, "as_int"); e.value = Double(Int64(bitPattern: try r.fixed64()))
            case 4: try r.expect(w, .bytes, "span_id"); e.spanID = try r.data()
            case 5: try r.expect(w, .bytes, "trace_id"); e.traceID = try r.data()
            default: try r.skip(w)
            }
        }
        return e
    }

    private static func keyValue(_ r: inout ProtoReader) throws(Malformed) -> (key: String, value: String) {
        var key = "", value = ""
        while !r.isAtEnd {
            let (n, w) = try r.field()
            switch n {
            case 1: try r.expect(w, .bytes, "key"); key = try r.string()
            case 2: try r.expect(w, .bytes, "value"); var v = try r.nested(); value = try anyValue(&v, depth: 0)
            default: try r.skip(w)
            }
        }
        return (key, value)
    }

    /// pcommon's `AsString`: scalars as text, arrays and maps as JSON, bytes as base64.
    private static func anyValue(_ r: inout ProtoReader, depth: Int) throws(Malformed) -> String {
        guard depth < 16 else { throw Malformed(description: "attribute values nested deeper than 16") }
        var out = ""
        while !r.isAtEnd {
            let (n, w) = try r.field()
            switch n {
            case 1: try r.expect(w, .bytes, "string_value"); out = try r.string()
            case 2: try r.expect(w, .varint, "bool_value"); out = try r.varint() != 0 ? "true" : "false"
            case 3: try r.expect(w, .varint, "int_value"); out = String(Int64(bitPattern: try r.varint()))
            case 4: try r.expect(w, .fixed64, "double_value"); out = OTLPText.double(try r.double())
            case 5, 6:
                try r.expect(w, .bytes, "array_value")
                var list = try r.nested()
                var items: [String] = []
                while !list.isAtEnd {
                    let (m, v) = try list.field()
                    guard m == 1 else { try list.skip(v); continue }
                    try list.expect(v, .bytes, "values")
                    var item = try list.nested()
                    if n == 5 {
                        var copy = item
                        let text = try anyValue(&item, depth: depth + 1)
                        items.append(try isString(&copy) ? OTLPText.jsonString(text) : text)
                    } else {
                        let (k, v) = try keyValue(&item)
                        items.append("\(OTLPText.jsonString(k)):\(OTLPText.jsonString(v))")
                    }
                }
                out = n == 5 ? "[" + items.joined(separator: ",") + "]" : "{" + items.joined(separator: ",") + "}"
            case 7: try r.expect(w, .bytes, "bytes_value"); out = Base64.encode(try r.data())
            default: try r.skip(w)
            }
        }
        return out
    }

    private static func isString(_ r: inout ProtoReader) throws(Malformed) -> Bool {
        var last = false
        while !r.isAtEnd { let (n, w) = try r.field(); last = n == 1; try r.skip(w) }
        return last
    }
}
