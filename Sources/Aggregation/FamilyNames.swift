import Pipeline

/// The names a family puts on the page, in any format the sink serves or will
/// serve: a histogram `h` renders `h_bucket`, `h_sum`, `h_count`; a summary `s`
/// renders `s`, `s_sum`, `s_count`; OpenMetrics adds `_created`, and names a counter
/// family without `_total` while its samples carry it (counter `jobs_total` is
/// family `jobs`, as is counter `jobs`). Two families whose sets meet would put two
/// `# HELP` lines, or two lines for one series, on one page.
enum FamilyNames {
    /// A counter's OpenMetrics family name: without a trailing `_total`.
    static func counterBase(_ name: [UInt8]) -> [UInt8] {
        let total = Array("_total".utf8)
        return name.count > total.count && name.suffix(total.count).elementsEqual(total) ? Array(name.dropLast(total.count)) : name
    }

    static func rendered(by name: [UInt8], type: MetricType) -> [[UInt8]] {
        func plus(_ suffix: String) -> [UInt8] { name + Array(suffix.utf8) }
        switch type {
        case .gauge:
            return [name]
        case .counter:
            let base = counterBase(name)
            return [base, base + Array("_total".utf8), base + Array("_created".utf8)]
        case .histogram:
            return [name, plus("_bucket"), plus("_sum"), plus("_count"), plus("_created")]
        case .summary:
            return [name, plus("_sum"), plus("_count"), plus("_created")]
        }
    }
}
