@testable import Sources
import Testing

/// A group member's share of the shards, as a value.
@Suite struct FairShareTests {
    struct Case: Sendable, CustomStringConvertible {
        var description: String
        var shards: Int, members: [String], me: String, mine: Set<Int>
        var target: Int, release: [Int], candidates: [Int]
    }

    static let cases: [Case] = [
        Case(description: "alone: takes every shard", shards: 4, members: ["a"], me: "a", mine: [],
             target: 4, release: [], candidates: [0, 1, 2, 3]),
        Case(description: "second of two: prefers the odd shards", shards: 4, members: ["a", "b"], me: "b", mine: [],
             target: 2, release: [], candidates: [1, 3, 0, 2]),
        Case(description: "holding all when a second joins: gives back the ones the other prefers", shards: 4, members: ["a", "b"], me: "a",
             mine: [0, 1, 2, 3], target: 2, release: [1, 3], candidates: []),
        Case(description: "at its share: nothing to do", shards: 4, members: ["a", "b"], me: "a", mine: [0, 2],
             target: 2, release: [], candidates: []),
        Case(description: "uneven: the share rounds up", shards: 5, members: ["a", "b"], me: "a", mine: [0, 2],
             target: 3, release: [], candidates: [4, 1, 3]),
        Case(description: "not yet in the member list: ranks first", shards: 3, members: ["x", "y", "z"], me: "new", mine: [],
             target: 1, release: [], candidates: [0, 1, 2]),
    ]

    @Test(arguments: cases) func share(_ c: Case) {
        let s = FairShare(shards: c.shards, members: c.members, me: c.me, mine: c.mine)
        #expect(s.target == c.target)
        #expect(s.release == c.release)
        #expect(s.candidates == c.candidates)
    }
}

/// The back-off both redis_list loops share, as a value.
@Suite struct OutageTests {
    @Test(arguments: [(1, 1.0, 0.1), (2, 1.0, 0.2), (4, 1.0, 0.8), (5, 1.0, 1.0), (40, 1.0, 1.0), (3, 0.25, 0.25)])
    func delay_isCappedExponential_drawnFromItsUpperHalf(attempt: Int, maxBackoff: Double, cap: Double) {
        #expect(abs(Outage.delay(attempt: attempt, maxBackoff: maxBackoff, random: { $0.upperBound }) - cap) < 1e-12)
        #expect(abs(Outage.delay(attempt: attempt, maxBackoff: maxBackoff, random: { $0.lowerBound }) - cap / 2) < 1e-12)
    }

    @Test func anOutage_isLoggedOnce_andAReconnectCountedOnlyAfterAFirstConnection() {
        var o = Outage()
        #expect(o.failed(maxBackoff: 1).starts == true)
        #expect(o.failed(maxBackoff: 1).starts == false, "logged once per outage")
        #expect(o.attempt == 2)
        #expect(o.answered() == (endsOutage: true, reconnect: false), "the first connection is no reconnect")
        #expect(o.attempt == 0)
        #expect(o.answered() == (endsOutage: false, reconnect: true))
        o.broke()
        #expect(o.failed(maxBackoff: 1).starts == false, "a broken connection already started the outage")
        #expect(o.answered() == (endsOutage: true, reconnect: true))
    }
}
