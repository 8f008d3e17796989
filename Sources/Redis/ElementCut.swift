import Pipeline
#if canImport(Glibc)
import Glibc
#endif

/// Cuts bulk strings longer than `limit` (queue elements) out of a RESP2 reply stream as it is read, before
/// hiredis sees it: hiredis holds a bulk string whole until its last byte arrived, so one
/// queue element of 500 MB would cost 500 MB (and the batch's copy as much again) — and,
/// in a reliable queue, again at every restart. An element over the limit reaches hiredis as
/// `OversizedElement`'s stand-in (its size and first bytes); the rest is skipped as it arrives.
///
/// Every bulk string is cut, top-level ones too (`BLMOVE` answers an element alone); a reply
/// that may be large, such as a `GET` of a shard's state, is read with `limit` raised (it
/// applies from the next header on, the walk goes on). Bytes pass through untouched
/// otherwise: the cut walks the headers and steps over the bodies.
struct ElementCut {
    var limit: Int
    private enum State {
        case line
        case body(Int)
        /// Passing the kept bytes, then skipping the rest (and its CRLF).
        case prefix(Int, skip: Int)
        case skip(Int)
    }

    private var state = State.line
    /// A header line split between two reads, held back until it is whole.
    private var pending: [UInt8] = []
    static let longestLine = 1 << 20
    private static let crlf: [UInt8] = [13, 10]

    init(limit: Int) { self.limit = limit }

    /// Feeds `chunk` to `out`, in one or more parts, with every element over the limit cut.
    mutating func feed(_ chunk: UnsafeRawBufferPointer, to out: (UnsafeRawBufferPointer) -> Void) throws(RedisError) {
        guard let base = chunk.baseAddress else { return }
        let n = chunk.count
        var i = 0, run = 0   // chunk[run..<i] passes through unchanged
        func flush(_ end: Int) { if end > run { out(UnsafeRawBufferPointer(start: base + run, count: end - run)) } }
        while i < n {
            switch state {
            case .body(let k):
                let t = min(k, n - i)
                i += t
                state = t == k ? .line : .body(k - t)
            case .prefix(let k, let rest):
                let t = min(k, n - i)
                i += t
                state = t == k ? .skip(rest) : .prefix(k - t, skip: rest)
            case .skip(let k):
                flush(i)
                let t = min(k, n - i)
                i += t
                run = i
                if t == k {
                    Self.crlf.withUnsafeBytes { out($0) }
                    state = .line
                } else {
                    state = .skip(k - t)
                }
            case .line:
                guard let nl = memchr(base + i, 10, n - i) else {
                    flush(i)
                    pending.append(contentsOf: UnsafeRawBufferPointer(start: base + i, count: n - i))
                    if pending.count > Self.longestLine { throw .protocolViolation("a reply line longer than \(Self.longestLine) bytes") }
                    i = n
                    run = n
                    continue
                }
                let end = base.distance(to: UnsafeRawPointer(nl)) + 1
                let cut: Int?
                if pending.isEmpty {
                    cut = header(UnsafeRawBufferPointer(start: base + i, count: end - i))
                } else {
                    pending.append(contentsOf: UnsafeRawBufferPointer(start: base + i, count: end - i))
                    cut = pending.withUnsafeBytes { header($0) }
                }
                if let size = cut {
                    flush(i)
                    let kept = min(size, OversizedElement.kept)
                    let standIn = OversizedElement.header(size: size)
                    (Array("$\(standIn.count + kept)\r\n".utf8) + standIn).withUnsafeBytes { out($0) }
                    state = .prefix(kept, skip: size - kept + 2)
                    run = end
                } else if !pending.isEmpty {
                    pending.removeLast(end - i)   // what this chunk holds of the line passes with the run
                    pending.withUnsafeBytes { out($0) }
                }
                pending.removeAll(keepingCapacity: true)
                i = end
            }
        }
        flush(n)
    }

    /// Reads one header line (with its CRLF): a bulk string's sets the state for its body, and
    /// returns its size when it is to be cut. Other lines (arrays, statuses, errors, integers,
    /// nulls) are followed by another line.
    private mutating func header(_ line: UnsafeRawBufferPointer) -> Int? {
        guard line.first == UInt8(ascii: "$"), line.count > 1, line[1] != UInt8(ascii: "-") else { return nil }
        var v = 0
        for b in line.dropFirst() {
            guard b >= 48 && b <= 57 else { break }
            v = v &* 10 &+ Int(b - 48)
        }
        if v > limit { return v }
        state = .body(v + 2)
        return nil
    }
}
