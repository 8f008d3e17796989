@testable import Pipeline
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

extension SeriesLimitsTests {
    /// Label names churning under expiry, then a restart from a state file: the family keeps
    /// only the name lists its live series use, the page is the same after the restart, and
    /// the restored series keep counting (a counter and a histogram, several name lists).
    @Test func labelNameChurn_underExpiry_thenARestart() throws {
        var limits = SeriesLimits()
        limits.expireAfter = .seconds(60)
        let clock = Clock()
        let s = store(limits, clock)
        for round in 0..<20 {
            _ = apply(s, [TestSample(.counter, "jobs_total", 1, labels: [("n\(round)", "v"), ("path", "/\(round)")]),
                          TestSample(.counter, "jobs_total", 1, labels: [("path", "/steady")]),
                          TestSample(.histogram, "lat_seconds", 0.3, labels: [("m\(round % 3)", "x")], buckets: [0.1, 0.5]),
                          TestSample(.counter, "jobs_total", 2, labels: [])])
            clock.advance(seconds: 40)
            _ = s.sweep()
        }
        let jobs = try #require(s.snapshot().first { $0.name == Array("jobs_total".utf8) })
        #expect(jobs.seriesCount == 3 && jobs.schemas.count == 3)   // the last round's list, `path` alone, none
        let page = render(s)
        #expect(page.contains(#"jobs_total{path="/steady"} 20"#) && page.contains("jobs_total 40\n"))
        // Each histogram series idles 120 s between its updates: only round 19's is left, from zero.
        #expect(page.contains(#"lat_seconds_bucket{m1="x",le="0.5"} 1"#) && !page.contains("m0=") && !page.contains("m2="))
        let lines = page.split(separator: "\n").filter { $0.hasPrefix("jobs_total{") }.map(String.init)
        #expect(lines == lines.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })

        let restored = store(limits, clock)
        restored.restore(try StateFile.decode(StateFile.encode(s.captureState())))
        #expect(render(restored) == page)
        _ = apply(restored, [TestSample(.counter, "jobs_total", 1, labels: [("path", "/steady")]),
                             TestSample(.counter, "jobs_total", 1, labels: [("n19", "v"), ("path", "/19")])])
        let after = render(restored)
        #expect(after.contains(#"jobs_total{path="/steady"} 21"#) && after.contains(#"jobs_total{n19="v",path="/19"} 2"#))
    }
}

extension SeriesLimitsTests {
    /// A family's table holds `ByteKeyTable.capacity` series (16 777 215); the next new one is
    /// dropped as `series_limit`, as docs/operating.md says, and existing ones keep updating.
    /// The capacity is lowered to 2 here, in place of sixteen million series.
    @Test func aFamilyWhoseTableIsFull_dropsNewSeriesAsSeriesLimit() {
        let s = MetricStore()
        _ = apply(s, [TestSample(.counter, "jobs_total", 1, labels: [("q", "a")]), TestSample(.counter, "jobs_total", 1, labels: [("q", "b")])])
        for shard in s.shards { shard.state.withLock { st in for f in st.families.indices { st.families[f].series.limit = 2 } } }
        let b = apply(s, [TestSample(.counter, "jobs_total", 1, labels: [("q", "c")]), TestSample(.counter, "jobs_total", 1, labels: [("q", "a")])])
        #expect(b.drops.entries.map(\.reason) == [.seriesLimit])
        #expect(render(s).contains(#"jobs_total{q="a"} 2"#) && !render(s).contains(#"q="c""#))
    }
}
