import Testing
@testable import Aggregation

/// The window keeps the observations its streams have not merged once (`recent`) where it
/// kept one buffer per stream: its answers must be the ones a buffer per stream gave,
/// through rotations, queries and restarts from a file an older build wrote.
@Suite struct SummaryWindowSharingTests {
    static let objectives: [(Double, Double)] = [(0.5, 0.05), (0.9, 0.01), (0.99, 0.001)]
    static let second: UInt64 = 1_000_000_000

    /// The window as it was: every stream with its own buffer (`QuantileStream.insert`).
    struct OneBufferPerStream {
        var streams: [QuantileStream]
        var head = 0
        init(buckets: Int) { streams = Array(repeating: QuantileStream(targets: SummaryWindowSharingTests.objectives), count: buckets) }
        mutating func observe(_ v: Double) { for i in streams.indices { streams[i].insert(v) } }
        mutating func rotate() { streams[head].reset(); head = (head + 1) % streams.count }
        mutating func quantiles() -> [Double] { SummaryWindowSharingTests.objectives.map { streams[head].query($0.0) } }
    }

    /// Random observations with a rotation every 10 s and a query every 3 s, 0.5 s apart:
    /// both hold the same answers at every query, with few observations (exact answers)
    /// and with many (merged runs).
    @Test(arguments: [0.02, 0.0015])
    func answers_areTheOnesABufferPerStreamGave(secondsPerObservation: Double) {
        var rng = SplitMix(seed: 7)
        let window = SummaryWindow(objectives: Self.objectives, maxAge: .seconds(50), ageBuckets: 5, now: 0)
        var reference = OneBufferPerStream(buckets: 5)
        var now: UInt64 = 0, nextRotation = 10 * Self.second, nextQuery = 3 * Self.second
        for _ in 0..<40_000 {
            now += UInt64(secondsPerObservation * 1e9)
            while now >= nextRotation { reference.rotate(); nextRotation += 10 * Self.second }
            let v = 1 + Double(rng.next() % 1_000_000) / 1000
            window.observe(v, now: now)
            reference.observe(v)
            if now >= nextQuery {
                #expect(window.quantiles(now: now) == reference.quantiles())
                nextQuery += 3 * Self.second
            }
        }
    }

    /// A file of an older build: one buffer per stream, the head's sorted by its last
    /// query. The restored window answers as that build would have.
    @Test func anOlderBuildsFile_restoresToTheSameAnswers() {
        var reference = OneBufferPerStream(buckets: 5)
        for i in 0..<120 { reference.observe(Double((i * 37) % 101) + 0.5) }
        reference.rotate()
        for i in 0..<60 { reference.observe(Double((i * 53) % 89) + 0.25) }
        _ = reference.quantiles()   // sorts the head's buffer in place, as the old query did
        let state = SummaryWindow.State(streams: reference.streams, head: reference.head, rotatesIn: 5 * Self.second)
        let restored = SummaryWindow(objectives: Self.objectives, maxAge: .seconds(50), ageBuckets: 5, now: 0, state: state)
        #expect(restored.quantiles(now: 0) == reference.quantiles())
        for i in 0..<900 { let v = Double((i * 71) % 997) + 0.75; restored.observe(v, now: 0); reference.observe(v) }
        #expect(restored.quantiles(now: 0) == reference.quantiles())
    }

    @Test func nested_listsSharedAsSuffixes_andWhatDoesNotNest() {
        let lists: [[Double]] = [[3, 1, 2], [2], [], [5, 4, 1, 3, 2]]
        let recent = SummaryWindow.nested(lists)
        #expect(recent?.count == 5)
        for l in lists { #expect(recent.map { Array($0.suffix(l.count)).sorted() } == l.sorted()) }
        #expect(SummaryWindow.nested([[1], [2]]) == nil)
        #expect(SummaryWindow.nested([[1, 2], [2, 3, 4]]) == nil)
        #expect(SummaryWindow.nested([]) == [])
    }
}
