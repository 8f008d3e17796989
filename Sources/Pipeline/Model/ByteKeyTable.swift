/// A hash table from byte strings to dense indices (0, 1, 2, … in insertion order),
/// with its keys stored back to back in one arena. Lookups take a borrowed byte
/// buffer, so finding an existing series allocates nothing.
///
/// Value type: a copy (the scrape snapshot) shares storage until the next insert.
package struct ByteKeyTable: Sendable {
    public init() {}

    @usableFromInline var slots: [Int32] = Array(repeating: -1, count: 16)   // entry index or -1
    public var hashes: [UInt64] = []
    public var keyEnds: [UInt32] = []
    public var keys: [UInt8] = []

    public var count: Int { hashes.count }

    @inlinable
    public func keyRange(_ index: Int) -> Range<Int> {
        (index == 0 ? 0 : Int(keyEnds[index - 1]))..<Int(keyEnds[index])
    }

    @inlinable
    public func withKey<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let r = keyRange(index)
        return keys.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[r])) }
    }

    @inlinable
    public func find(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: hash) & mask
        return keys.withUnsafeBytes { arena -> Int? in
            while true {
                let e = Int(slots[i])
                if e < 0 { return nil }
                if hashes[e] == hash {
                    let r = keyRange(e)
                    if r.count == key.count, memcmpEqual(arena.baseAddress! + r.lowerBound, key.baseAddress, key.count) { return e }
                }
                i = (i + 1) & mask
            }
        }
    }

    /// `find` for a table kept inside another value (a family's series in the store's
    /// array): taken `inout`, the call borrows it in place, where calling `find` copies
    /// the table out first and retains and releases its four arrays (measured: 4 + 4
    /// atomic reference-count operations per sample on the store's hit path).
    public mutating func locate(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int? { find(key, hash: hash) }

    /// Adds `key` (which must not be present) and returns its index.
    public mutating func insert(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int {
        if (hashes.count + 1) * 2 > slots.count { grow() }
        let index = hashes.count
        hashes.append(hash)
        keys.append(contentsOf: key)
        keyEnds.append(UInt32(keys.count))
        place(index, hash: hash)
        return index
    }

    private mutating func place(_ index: Int, hash: UInt64) {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: hash) & mask
        while slots[i] >= 0 { i = (i + 1) & mask }
        slots[i] = Int32(index)
    }

    /// Forgets every key, keeping capacity.
    public mutating func removeAll() {
        for i in slots.indices { slots[i] = -1 }
        hashes.removeAll(keepingCapacity: true)
        keyEnds.removeAll(keepingCapacity: true)
        keys.removeAll(keepingCapacity: true)
    }

    private mutating func grow() {
        slots = Array(repeating: -1, count: slots.count * 2)
        for (i, h) in hashes.enumerated() { place(i, hash: h) }
    }
}

@inlinable @inline(__always)
func memcmpEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer?, _ n: Int) -> Bool {
    guard n > 0, let b else { return true }
    return memcmp(a, b, n) == 0
}

#if canImport(Glibc)
import Glibc
#endif

/// A fast non-cryptographic 64-bit hash over bytes (multiply-xorshift per 8-byte word).
@inlinable @inline(__always)
public func hashBytes(_ b: UnsafeRawBufferPointer, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> UInt64 {
    var h = seed ^ (UInt64(b.count) &* 0xFF51_AFD7_ED55_8CCD)
    var i = 0
    let n = b.count
    guard let base = b.baseAddress else { return h }
    while i + 8 <= n {
        let w = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        h = (h ^ w) &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 29
        i += 8
    }
    var tail: UInt64 = 0
    var shift: UInt64 = 0
    while i < n {
        tail |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << shift
        shift += 8
        i += 1
    }
    h = (h ^ tail) &* 0xC4CE_B9FE_1A85_EC53
    h ^= h >> 32
    h = h &* 0xFF51_AFD7_ED55_8CCD
    h ^= h >> 29
    return h
}
