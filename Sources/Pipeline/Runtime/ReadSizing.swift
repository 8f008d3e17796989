/// How many elements a source asks for per pop and how many pops it keeps in
/// flight, so that the replies in flight fit its share of the memory budget
/// (`MemoryBudget.readShare`) whatever the elements' size: small elements keep the
/// configured pop count and deep pipelining, large ones get fewer pops in flight,
/// and elements larger than a share are popped one at a time.
package struct ReadSizing: Equatable, Sendable {
    public var count: Int
    public var inFlight: Int

    public init(count: Int, inFlight: Int) { self.count = count; self.inFlight = inFlight }

    /// `averageElementBytes` 0: nothing seen yet — one modest pop finds out.
    public static func plan(averageElementBytes avg: Double, share: Int, popCount: Int, maxInFlight: Int) -> ReadSizing {
        guard avg > 0 else { return ReadSizing(count: min(popCount, firstPopCount), inFlight: 1) }
        let perPop = Double(popCount) * avg
        if perPop <= Double(share) {
            return ReadSizing(count: popCount, inFlight: max(1, min(maxInFlight, Int(Double(share) / perPop))))
        }
        return ReadSizing(count: max(1, Int(Double(share) / avg)), inFlight: 1)
    }

    /// The first pop's count, before any element size is known.
    public static let firstPopCount = 16
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
