/// Raw queue elements, as popped: one contiguous byte buffer plus end offsets, so a
/// batch of a thousand payloads is a few allocations, not a thousand. (Fields are
/// public for inlining; change them through `append` and `removeAll`.)
public struct PayloadBatch: Sendable {
    /// All payload bytes back to back.
    public var bytes: [UInt8] = []
    /// `ends[i]` is the offset one past payload `i`.
    public var ends: [Int] = []
    /// `origins[i]` identifies where payload `i` came from (see `Telemetry.registerOrigin`).
    public var origins: [UInt16] = []

    public init() {}

    public var count: Int { ends.count }
    public var isEmpty: Bool { ends.isEmpty }

    public mutating func reserve(payloads: Int, bytes byteCount: Int) {
        ends.reserveWithHeadroom(payloads)
        origins.reserveWithHeadroom(payloads)
        bytes.reserveWithHeadroom(byteCount)
    }

    @inlinable
    public mutating func append(_ payload: UnsafeRawBufferPointer, origin: UInt16) {
        bytes.append(contentsOf: payload)
        ends.append(bytes.count)
        origins.append(origin)
    }

    public mutating func append<C: Collection>(_ payload: C, origin: UInt16) where C.Element == UInt8 {
        bytes.append(contentsOf: payload)
        ends.append(bytes.count)
        origins.append(origin)
    }

    public mutating func removeAll(keepingCapacity: Bool = true) {
        bytes.removeAll(keepingCapacity: keepingCapacity)
        ends.removeAll(keepingCapacity: keepingCapacity)
        origins.removeAll(keepingCapacity: keepingCapacity)
    }

    /// Calls `body` with payload `index`'s bytes; the pointer is valid only inside `body`.
    @inlinable
    public func withPayload<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let start = index == 0 ? 0 : ends[index - 1]
        let end = ends[index]
        return try bytes.withUnsafeBytes { all in
            try body(UnsafeRawBufferPointer(rebasing: all[start..<end]))
        }
    }
}
