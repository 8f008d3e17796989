import CoreMetrics

/// swift-metrics' handlers: each knows its series' number in the backend and records
/// into the shared buffer under one lock (a dictionary update, no I/O).
final class CounterSeries: CounterHandler, FloatingPointCounterHandler {
    let series: Int
    let backend: PromStreamMetrics
    init(series: Int, backend: PromStreamMetrics) { self.series = series; self.backend = backend }
    func increment(by amount: Int64) { backend.buffer.withLock { $0.add(series, Double(amount)) } }
    func increment(by amount: Double) { backend.buffer.withLock { $0.add(series, amount) } }
    /// The gateway's total cannot go back: only what was not sent yet is forgotten.
    func reset() { backend.buffer.withLock { $0.forget(series) } }
}

/// `Gauge` (a recorder that does not aggregate) and `Meter`: the last value wins; a
/// meter moves the series' current value, which every handler of the series shares.
final class GaugeSeries: RecorderHandler, MeterHandler {
    let series: Int
    let backend: PromStreamMetrics
    init(series: Int, backend: PromStreamMetrics) { self.series = series; self.backend = backend }
    func record(_ value: Int64) { set(Double(value)) }
    func record(_ value: Double) { set(value) }
    func set(_ value: Int64) { set(Double(value)) }
    func set(_ value: Double) { backend.buffer.withLock { $0.set(series, value) } }
    func increment(by amount: Double) { backend.buffer.withLock { $0.move(series, by: amount) } }
    func decrement(by amount: Double) { backend.buffer.withLock { $0.move(series, by: -amount) } }
}

/// `Recorder` (aggregating) and `Timer` (in seconds): observations of a histogram, counted into its buckets.
final class HistogramSeries: RecorderHandler, TimerHandler {
    let series: Int
    let bounds: [Double]
    let backend: PromStreamMetrics
    init(series: (number: Int, bounds: [Double]), backend: PromStreamMetrics) {
        self.series = series.number; bounds = series.bounds; self.backend = backend
    }
    func record(_ value: Int64) { record(Double(value)) }
    func record(_ value: Double) { backend.buffer.withLock { $0.observe(series, value, bounds: bounds) } }
    func recordNanoseconds(_ duration: Int64) { record(Double(duration) / 1e9) }
}
