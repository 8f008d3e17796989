/// How many elements a source asks for per pop and how many pops it keeps in
/// flight, so that the replies in flight fit its share of the memory budget
/// (`MemoryBudget.readShare`) whatever the elements' size: small elements are popped
/// up to `maxPopCount` at a time with deep pipelining, large ones get fewer pops in
/// flight, and elements larger than a share are popped one at a time.
///
/// Why small elements get larger pops: a pop's cost in Redis and in the source is
/// mostly per command and per reply, not per element, and Redis shares the machine.
/// 150-byte elements drained 1.11× faster at 200 per pop than at the .NET default
/// of 25 (CPU per sample −6%), 400 about as fast, 800 slower (docs/performance.md).
/// A pop that finds fewer elements costs nothing more, so the count needs no backlog
/// detection: it follows the elements' size only (64 KiB per reply: 256 elements of 150 bytes).
package struct ReadSizing: Equatable, Sendable {
    public var count: Int
    public var inFlight: Int

    public init(count: Int, inFlight: Int) { self.count = count; self.inFlight = inFlight }

    /// `averageElementBytes` 0: nothing seen yet — a pop of one element finds out (16
    /// elements of a hostile sender's 100 MB each would be 1.6 GB in one reply). `maxPopCount`
    /// below `popCount` counts as `popCount`.
    public static func plan(averageElementBytes avg: Double, share: Int, popCount: Int, maxPopCount: Int,
                            maxInFlight: Int) -> ReadSizing {
        guard avg > 0 else { return ReadSizing(count: min(popCount, firstPopCount), inFlight: 1) }
        // A power of two, so that the moving average's small swings do not change the pop (which ends a pipelining round).
        let fit = Int(Double(replyTarget) / avg)
        let count = max(popCount, min(maxPopCount, fit > 0 ? 1 << (Int.bitWidth - 1 - fit.leadingZeroBitCount) : 0))
        let perPop = Double(count) * avg
        if perPop <= Double(share) {
            return ReadSizing(count: count, inFlight: max(1, min(maxInFlight, Int(Double(share) / perPop))))
        }
        return ReadSizing(count: max(1, Int(Double(share) / avg)), inFlight: 1)
    }

    /// The first pop's count, before any element size is known.
    public static let firstPopCount = 1

    /// The reply size up to which a pop takes more than `popCount` elements: one socket read.
    public static let replyTarget = 64 << 10
}

/// The average size of the elements a source reads (a moving average, so a change
/// in what senders push shows within a few pops).
package struct ElementSize: Sendable {
    public private(set) var average: Double = 0
    public init() {}
    public mutating func observe(bytes: Int, elements: Int) {
        guard elements > 0 else { return }
        let now = Double(bytes) / Double(elements)
        average = average == 0 ? now : 0.75 * average + 0.25 * now
    }
}
