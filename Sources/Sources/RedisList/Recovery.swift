import Pipeline
import Redis

/// What a reliable source does with a processing list on a (re)connect, from what
/// Redis holds (`acked`, the list's length) and where the source stands: the one
/// decision both the single-list and the sharded source carry out.
struct Recovery: Equatable {
    /// Where emission continues from (the restored position, raised to `acked`).
    var emitted: UInt64
    /// The state ended before `acked` (elements up to it are not in it): log it.
    var stateBehindAcked = false
    /// Redis holds less than was emitted (it lost its bookkeeping): set `acked`
    /// to this, so what it holds counts as emitted and new elements follow on.
    var renumberAckedTo: UInt64?
    /// Trim the processing list through this (durable beyond `acked`).
    var trimThrough: UInt64?
    /// The newest element number Redis holds.
    var held: UInt64
    /// Elements to read back (`LRANGE 0 missing-1`) and re-emit, oldest first.
    var missing: Int { emitted < held ? Int(held - emitted) : 0 }

    /// `durable`: what the sinks made durable — nil on a first connect, when what
    /// the restored state holds is durable. `raiseToAcked`: a restored position
    /// (not this source's own) may lag what Redis acknowledged.
    init(acked: UInt64, length: Int64, emitted start: UInt64, durable: UInt64?, raiseToAcked: Bool) {
        held = acked + UInt64(max(0, length))
        emitted = start
        if raiseToAcked && emitted < acked {
            stateBehindAcked = true
            emitted = acked
        }
        if emitted > held {
            renumberAckedTo = emitted - UInt64(max(0, length))
        } else {
            let d = durable.map { min(emitted, $0) } ?? emitted
            if d > acked { trimThrough = d }
        }
    }
}

/// How a reliable source reads the processing list's `missing` elements back: in pages
/// that fit its read share, each emitted as a batch before the next is read, so a
/// replay of millions of elements (a crash during a backlog drain) stays within the
/// memory budget instead of arriving as one reply and one batch.
enum ReplayPages {
    /// The LRANGE range of the next page, oldest first, with `remaining` elements not yet
    /// read: pops LPUSH onto the list, so they sit newest first at 0 … remaining-1 and the
    /// oldest `page` are the highest indices. The page after it ends at `lowerBound` - 1.
    static func next(remaining: Int, page: Int) -> ClosedRange<Int> { max(0, remaining - max(1, page))...(remaining - 1) }

    /// Reads `missing` elements back with `read` (an `LRANGE` of the given range), oldest first, a
    /// page at a time: each page goes to `emit` as payloads of `origin` before the next is read, so
    /// what `emit` counted as emitted is never read again. Stops before a page once `stopping()`;
    /// returns how many were left unread.
    static func replay(missing: Int, share: Int, batchSize: Int, origin: UInt16, stopping: () -> Bool,
                       read: (ClosedRange<Int>) throws(RedisError) -> RedisValue, emit: (PayloadBatch) -> Void) throws(RedisError) -> Int {
        var remaining = missing, seen = ElementSize()
        while remaining > 0 && !stopping() {
            let page = next(remaining: remaining, page: size(averageElementBytes: seen.average, share: share, batchSize: batchSize))
            var batch = PayloadBatch()
            if case .array(let items) = try read(page) {
                for case .string(let e) in items.reversed() { batch.append(e, origin: origin) }   // oldest first
            }
            guard batch.count == page.count else { throw .protocolViolation("LRANGE did not answer the \(page.count) elements asked") }
            seen.observe(bytes: batch.bytes.count, elements: batch.count)
            remaining = page.lowerBound
            emit(batch)
        }
        return remaining
    }

    /// Elements per page, as a pop's (`ReadSizing`): one before any size is known, then a
    /// batch (`batch_size`) when that fits the read share, fewer for large elements.
    static func size(averageElementBytes: Double, share: Int, batchSize: Int) -> Int {
        ReadSizing.plan(averageElementBytes: averageElementBytes, share: share, popCount: batchSize, maxPopCount: batchSize, maxInFlight: 1).count
    }
}
