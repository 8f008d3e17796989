import Pipeline
import Synchronization
import Testing
import TestSupport

@Suite struct CheckpointsTests {
    final class Seen: Sendable {
        let values = Mutex<[UInt64]>([])
        var all: [UInt64] { values.withLock { $0 } }
    }

    func make(sinks: [String]) -> (Checkpoints, UInt16, Seen) {
        let c = Checkpoints()
        let seen = Seen()
        c.setSinks(sinks, of: "src")
        let stream = c.register(stream: "s", source: "src") { p in seen.values.withLock { $0.append(p) } }.stream
        return (c, stream, seen)
    }

    @Test func rangesMadeDurableOutOfOrder_reachTheSourceInOrder() {
        let (c, s, seen) = make(sinks: ["sink"])
        c.markDurable([Acknowledgement(stream: s, first: 11, through: 20)], by: "sink")
        #expect(seen.all.isEmpty, "1…10 is not durable yet")
        c.markDurable([Acknowledgement(stream: s, first: 1, through: 10)], by: "sink")
        c.markDurable([Acknowledgement(stream: s, first: 21, through: 25)], by: "sink")
        #expect(seen.all == [20, 25])
    }

    @Test func aStreamReachingTwoSinks_isDurableWhenBothSaySo() {
        let (c, s, seen) = make(sinks: ["a", "b"])
        c.markDurable([Acknowledgement(stream: s, first: 1, through: 5)], by: "a")
        #expect(seen.all.isEmpty)
        c.markDurable([Acknowledgement(stream: s, first: 1, through: 3)], by: "b")
        #expect(seen.all == [3])
        c.markDurable([Acknowledgement(stream: s, first: 4, through: 9)], by: "b")
        #expect(seen.all == [3, 5])
    }

    @Test func aReloadThatChangesTheSinksBelow_releasesARemovedSink_andStartsANewOneAfterWhatWasHandedOn() {
        let (c, s, seen) = make(sinks: ["a", "b"])
        c.handedOn(Acknowledgement(stream: s, first: 1, through: 5))
        c.markDurable([Acknowledgement(stream: s, first: 1, through: 5)], by: "a")
        c.setSinks(["a", "c"], of: "src")   // b removed; c never sees 1…5
        #expect(seen.all == [])
        c.markDurable([Acknowledgement(stream: s, first: 6, through: 8)], by: "a")
        #expect(seen.all == [5], "b no longer holds the stream back, c is past 5")
        c.markDurable([Acknowledgement(stream: s, first: 6, through: 8)], by: "c")
        #expect(seen.all == [5, 8])
    }

    @Test func restoredPosition_isWhereDurabilityContinues() {
        let (c, s, seen) = make(sinks: ["sink"])
        c.restore(stream: "s", through: 100)
        #expect(c.restored(stream: "s") == 100)
        c.markDurable([Acknowledgement(stream: s, first: 50, through: 90)], by: "sink")   // already covered
        c.markDurable([Acknowledgement(stream: s, first: 101, through: 110)], by: "sink")
        #expect(seen.all == [110])
    }

    @Test func aStreamRegisteredAgain_continuesWhereItsPreviousSourceStopped() {
        let (c, s, _) = make(sinks: ["sink"])
        #expect(c.register(stream: "fresh", source: "src") { _ in }.start == .fresh)
        c.handedOn(Acknowledgement(stream: s, first: 1, through: 40))
        c.markDurable([Acknowledgement(stream: s, first: 1, through: 25)], by: "sink")
        let again = c.register(stream: "s", source: "src") { _ in }
        #expect(again.stream == s && again.start == .continuing(emitted: 40, durable: 25), "a reload's rebuilt source emits from 41 on")
    }
}
