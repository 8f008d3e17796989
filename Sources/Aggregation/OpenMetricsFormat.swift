import Pipeline

/// OpenMetrics 1.0.0 text, family by family (`Exposition` adds `# EOF`).
///
/// Differences from text 0.0.4: a counter family is named without `_total` and
/// its samples with it (pushed `jobs_total` and pushed `jobs` are both family
/// `jobs`, sample `jobs_total`; the store never holds both: the second is dropped
/// as `name_collision`, see `FamilyNames`); `# HELP` escapes `"` too; exemplars
/// follow counter samples and histogram buckets as ` # {labels} value [timestamp]`.
/// `le` and `quantile` values are written as in text 0.0.4 (`le="1"`), not in
/// OpenMetrics' canonical form (`1.0`, client_golang's): Prometheus 2 stores them as
/// written, so a gateway upgraded from text to OpenMetrics keeps its bucket series.
/// `_sum` is a counter in OpenMetrics, so it is left out — with `_count`, which
/// must come with it — where it is negative, and for every series of a histogram
/// with a negative bucket bound (as the spec requires; the `+Inf` bucket still
/// carries the count). No `# UNIT` (samples carry none) and no `_created` (the gateway does not know
/// when a sender's counter began).
enum OpenMetricsFormat {
    static func render(_ f: Family, order: [Int32], to out: inout [UInt8]) {
        let familyName = f.type == .counter ? FamilyNames.counterBase(f.name) : f.name
        familyName.withUnsafeBytes { family in
            f.help.withUnsafeBytes { help in Exposition.header(name: family, help: help, type: f.type, openMetrics: true, to: &out) }
            let nb = f.bounds.count
            let k = f.objectives.count
            func formatted(_ v: Double) -> [UInt8] { var t: [UInt8] = []; TextFormat.appendFloat(v, to: &t); return t }
            let leTexts = f.bounds.map(formatted) + [formatted(.infinity)]
            let quantileTexts = f.objectives.map { formatted($0.0) }
            let negativeBound = f.bounds.first.map { $0 < 0 } ?? false
            f.withLabelTexts { texts in
                for s32 in order {
                    let s = Int(s32)
                    let exemplars = f.exemplars.isEmpty ? [] : f.exemplars[s]
                    let labels = texts.text(s)
                    switch f.type {
                    case .counter:
                        Exposition.line(family, "_total", labels: labels, value: f.values[s], exemplar: exemplars.first ?? nil, to: &out)
                    case .gauge:
                        Exposition.line(family, nil, labels: labels, value: f.values[s], to: &out)
                    case .histogram:
                        var cumulative: Double = 0
                        for b in 0...nb {
                            cumulative = b == nb ? f.counts[s] : cumulative + f.bucketCounts[s * (nb + 1) + b]
                            Exposition.line(family, "_bucket", labels: labels, extra: "le", extraText: leTexts[b], value: cumulative,
                                 exemplar: b < exemplars.count ? exemplars[b] : nil, to: &out)
                        }
                        if !negativeBound && f.values[s] >= 0 {   // both or neither; the +Inf bucket has the count
                            Exposition.line(family, "_sum", labels: labels, value: f.values[s], to: &out)
                            Exposition.line(family, "_count", labels: labels, value: f.counts[s], to: &out)
                        }
                    case .summary:
                        if !f.quantiles.isEmpty {
                            for j in 0..<k {
                                Exposition.line(family, nil, labels: labels, extra: "quantile", extraText: quantileTexts[j],
                                        value: f.quantiles[s * k + j], to: &out)
                            }
                        }
                        if f.values[s] >= 0 {
                            Exposition.line(family, "_sum", labels: labels, value: f.values[s], to: &out)
                            Exposition.line(family, "_count", labels: labels, value: f.counts[s], to: &out)
                        }
                    }
                }
            }
        }
    }

    static func render(_ m: MetaFamily, to out: inout [UInt8]) {
        let name = Array(m.name.utf8)
        let family = m.type == .counter ? FamilyNames.counterBase(name) : name
        let help = Array(m.help.utf8)
        family.withUnsafeBytes { n in help.withUnsafeBytes { h in Exposition.header(name: n, help: h, type: m.type, openMetrics: true, to: &out) } }
        var labels: [UInt8] = []
        for s in m.samples {
            Exposition.metaLabels(s, into: &labels)
            family.withUnsafeBytes { n in
                labels.withUnsafeBytes { l in Exposition.line(n, m.type == .counter ? "_total" : nil, labels: l, value: s.value, to: &out) }
            }
        }
    }

}
