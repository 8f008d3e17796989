import Pipeline

/// A sample written the way a test wants to read it.
public struct TestSample: Sendable {
    public var type: MetricType
    public var name: String
    public var value: Double
    public var labels: [(String, String)]
    public var help: String
    public var buckets: [Double]
    public var quantiles: [Double]
    public var epsilons: [Double]
    /// Labels, value and timestamp (NaN: none) of an exemplar.
    public var exemplar: (labels: [(String, String)], value: Double, timestamp: Double)?

    public init(_ type: MetricType, _ name: String, _ value: Double, labels: [(String, String)] = [], help: String = "",
                buckets: [Double] = [], quantiles: [Double] = [], epsilons: [Double] = [],
                exemplar: (labels: [(String, String)], value: Double, timestamp: Double)? = nil) {
        self.type = type; self.name = name; self.value = value; self.labels = labels; self.help = help
        self.buckets = buckets; self.quantiles = quantiles; self.epsilons = epsilons; self.exemplar = exemplar
    }
}

/// Builds a sample batch from test samples.
public func sampleBatch(_ samples: [TestSample], origin: UInt16 = 0) -> Batch {
    var s = SampleBatch()
    for t in samples {
        var r = SampleRecord(type: t.type, origin: origin, value: t.value, name: s.appendString(t.name))
        r.help = s.appendString(t.help)
        r.labelStart = UInt32(s.labels.count)
        for (k, v) in t.labels { s.labels.append(LabelRef(name: s.appendString(k), value: s.appendString(v))) }
        r.labelCount = UInt32(t.labels.count)
        r.buckets = s.appendNumbers(t.buckets)
        r.quantiles = s.appendNumbers(t.quantiles)
        r.epsilons = s.appendNumbers(t.epsilons)
        if let e = t.exemplar {
            let start = UInt32(s.labels.count)
            for (k, v) in e.labels { s.labels.append(LabelRef(name: s.appendString(k), value: s.appendString(v))) }
            s.exemplars.append(ExemplarRef(labelStart: start, labelCount: UInt32(e.labels.count), value: e.value, timestamp: e.timestamp))
            r.exemplar = UInt32(s.exemplars.count)
        }
        s.records.append(r)
    }
    return Batch(samples: s)
}
