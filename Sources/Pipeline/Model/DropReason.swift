/// Why a sample was dropped: the `reason` label of
/// `prom_stream_gateway_dropped_metrics_total`.
///
/// The framework declares only the reasons it produces itself (`buffer_full`);
/// every stage module declares its own next to the code that drops
/// (`extension DropReason { static let invalidJSON = DropReason("invalid_json") }`).
/// Two modules may declare the same name: a reason is its name. Keep the set small
/// and fixed — it is a label.
public struct DropReason: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    /// A drop the configuration asked for (a `relabel` rule's `drop`): logged at
    /// debug level, not as a warning.
    public let isIntended: Bool
    public init(_ name: String, intended: Bool = false) { self.name = name; self.isIntended = intended }
    public var description: String { name }

    public static func == (a: DropReason, b: DropReason) -> Bool { a.name == b.name }
    public func hash(into h: inout Hasher) { h.combine(name) }

    /// Discarded by a full `when_full: drop_newest` input buffer.
    public static let bufferFull = DropReason("buffer_full")
}

/// Drops counted while a stage processes one batch; the runtime adds them to the
/// shared counters and logs them (rate-limited) once per batch, so a stage never
/// touches a lock or a logger per sample.
package struct DropTally: Sendable {
    public struct Entry: Sendable {
        public var origin: UInt16
        public var reason: DropReason
        public var count: Int
    }
    public private(set) var entries: [Entry] = []
    /// What the first drop of the batch was (reason, and the sample or payload
    /// shortened), for the runtime's rate-limited warning. Built once per batch.
    public private(set) var firstNote: String?
    /// True when every drop counted was intended (`DropReason.isIntended`).
    public private(set) var allIntended = true
    /// How many drops of this batch are kept whole for the stage's `dead_letter`
    /// list (set by the runtime; 0: none, and nothing is built for them).
    public var letterBudget = 0
    /// The drops kept for the dead-letter list: reason, note and the payload.
    public private(set) var letters: [(reason: DropReason, note: String, payload: [UInt8])] = []
    /// Unintended drops past `letterBudget` (not kept; counted as dropped letters).
    public private(set) var letterOverflow = 0

    public init() {}

    public var isEmpty: Bool { entries.isEmpty }
    public var total: Int { entries.reduce(0) { $0 + $1.count } }

    /// Counts `count` drops; `note` (evaluated only for the batch's first drop)
    /// describes what was dropped.
    public mutating func add(origin: UInt16, reason: DropReason, count: Int = 1, note: @autoclosure () -> String = "",
                             payload: @autoclosure () -> [UInt8] = []) {
        if !reason.isIntended { allIntended = false }
        if firstNote == nil {
            let n = note()
            firstNote = n.isEmpty ? reason.name : "\(reason.name): \(n)"
        }
        if letterBudget > 0 && !reason.isIntended {
            if letters.count < letterBudget { letters.append((reason, note(), payload())) } else { letterOverflow += count }
        }
        for i in entries.indices where entries[i].origin == origin && entries[i].reason == reason {
            entries[i].count += count
            return
        }
        entries.append(Entry(origin: origin, reason: reason, count: count))
    }

    /// One line for the log: `3 dropped (bad_value 2, invalid_name 1); first: …`.
    public var summary: String {
        var byReason: [(String, Int)] = []
        for e in entries {
            if let i = byReason.firstIndex(where: { $0.0 == e.reason.name }) { byReason[i].1 += e.count } else { byReason.append((e.reason.name,
                    e.count)) }
        }
        let reasons = byReason.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
        return "\(total) dropped (\(reasons)); first: \(firstNote ?? "")"
    }

    public mutating func removeAll() {
        entries.removeAll(keepingCapacity: true)
        firstNote = nil
        allIntended = true
        letters.removeAll()
        letterOverflow = 0
        letterBudget = 0
    }
}
