import Pipeline
import Synchronization
import Testing
import TestSupport
@testable import Aggregation
@testable import Sinks

@Suite struct SeriesLimitsTests {
    final class Clock: Sendable {
        let nanos = Atomic<UInt64>(1_000_000_000)
        func advance(seconds: Double) { nanos.add(UInt64(seconds * 1e9), ordering: .relaxed) }
        var now: UInt64 { nanos.load(ordering: .relaxed) }
    }

    func store(_ limits: SeriesLimits, _ clock: Clock) -> MetricStore {
        MetricStore(limits: limits, clock: { clock.now })
    }

    @Test func expireAfter_removesSeriesNotUpdatedAndTheyRestartFromZero() {
        var limits = SeriesLimits()
        limits.expireAfter = .seconds(60)
        let clock = Clock()
        let s = store(limits, clock)
        apply(s, [TestSample(.counter, "jobs_total", 5, labels: [("q", "old")]), TestSample(.counter, "jobs_total", 1, labels: [("q", "live")])])
        clock.advance(seconds: 40)
        apply(s, [TestSample(.counter, "jobs_total", 1, labels: [("q", "live")])])
        clock.advance(seconds: 30)   // old: 70 s idle, live: 30 s
        #expect(s.sweep() == 1)
        var text = render(s)
        #expect(!text.contains(#"q="old""#))
        #expect(text.contains(#"jobs_total{q="live"} 2"#))
        #expect(s.seriesCount == 1)
        apply(s, [TestSample(.counter, "jobs_total", 1, labels: [("q", "old")])])
        text = render(s)
        #expect(text.contains(#"jobs_total{q="old"} 1"#))
        #expect(text.contains(#"jobs_total{q="live"} 2"#))
    }

    @Test func expireByName_overridesTheDefaultPerPattern() {
        var limits = SeriesLimits()
        limits.expireByName = [("lambda_*", .seconds(10))]
        let clock = Clock()
        let s = store(limits, clock)
        apply(s, [TestSample(.gauge, "lambda_memory_bytes", 1), TestSample(.gauge, "steady_value", 1),
                  TestSample(.histogram, "lambda_seconds", 1, buckets: [1])])
        clock.advance(seconds: 11)
        #expect(s.sweep() == 2)
        let text = render(s)
        #expect(!text.contains("lambda_"))
        #expect(text.contains("steady_value 1"))
    }

    @Test func maxSeries_dropsNewSeriesButKeepsUpdatingExistingOnes() {
        var limits = SeriesLimits()
        limits.maxSeries = 3
        limits.maxSeriesPerMetric = 2
        let s = store(limits, Clock())
        let b = apply(s, [
            TestSample(.counter, "a_total", 1, labels: [("i", "1")]),
            TestSample(.counter, "a_total", 1, labels: [("i", "2")]),
            TestSample(.counter, "a_total", 1, labels: [("i", "3")]),   // per-metric cap
            TestSample(.counter, "b_total", 1),
            TestSample(.counter, "c_total", 1),                        // global cap
            TestSample(.counter, "a_total", 1, labels: [("i", "1")]),  // existing: still updated
        ])
        #expect(b.drops.entries.map(\.reason) == [.seriesLimit])
        #expect(b.drops.total == 2)
        #expect(s.seriesCount == 3)
        #expect(render(s).contains(#"a_total{i="1"} 2"#))
    }

    @Test(arguments: [("lambda_*", "lambda_x", true), ("lambda_*", "xlambda_", false), ("a?c", "abc", true), ("*", "", true), ("a*b*c", "aXbYc", true), ("a*b", "ab", true), ("a*b", "ac", false)])
    func glob_matchesNames(_ pattern: String, _ name: String, _ expected: Bool) {
        #expect(globMatch(pattern, name) == expected)
    }
}
