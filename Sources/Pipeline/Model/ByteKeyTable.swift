/// A hash table from byte strings to dense indices (0, 1, 2, … in insertion order),
/// with its keys stored back to back in one arena. Lookups take a borrowed byte
/// buffer, so finding an existing series allocates nothing.
///
/// Per entry it holds the key, its end (4 bytes) and 1⅓–2⅔ slots of 4 bytes: a slot is
/// the entry's index in its low 24 bits and 8 bits of the key's hash above them, so a
/// probe rejects 255 of 256 other keys without reading them, and no hash is kept per
/// entry (growing rehashes the keys). Hence at most `capacity` entries, and a load of ¾.
///
/// Value type: a copy (the scrape snapshot) shares storage until the next insert.
package struct ByteKeyTable: Sendable {
    public init() {}

    /// A table that holds at most `limit` (≤ `capacity`) entries: for tests of a full table.
    init(limit: Int) { self.limit = min(limit, Self.capacity) }

    /// Entries a table holds at most (24 bits of index; one value is the empty slot).
    public static let capacity = 1 << 24 - 1
    var limit = ByteKeyTable.capacity
    @usableFromInline static let empty = UInt32.max
    @usableFromInline var slots: [UInt32] = Array(repeating: ByteKeyTable.empty, count: 16)
    public var keyEnds: [UInt32] = []
    public var keys: [UInt8] = []

    public var count: Int { keyEnds.count }
    public var isFull: Bool { count >= limit }

    @inlinable
    public func keyRange(_ index: Int) -> Range<Int> {
        (index == 0 ? 0 : Int(keyEnds[index - 1]))..<Int(keyEnds[index])
    }

    @inlinable
    public func withKey<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let r = keyRange(index)
        return keys.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[r])) }
    }

    @inlinable @inline(__always)
    static func tag(_ hash: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: hash >> 56) << 24 }

    @inlinable
    public func find(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        let mask = slots.count - 1
        let tag = Self.tag(hash)
        var i = Int(truncatingIfNeeded: hash) & mask
        return keys.withUnsafeBytes { arena -> Int? in
            slots.withUnsafeBufferPointer { slots -> Int? in
                while true {
                    let s = slots[i]
                    if s == Self.empty { return nil }
                    if s & 0xFF00_0000 == tag {
                        let e = Int(s & 0x00FF_FFFF)
                        let r = keyRange(e)
                        if r.count == key.count, bytesEqual(arena.baseAddress! + r.lowerBound, key.baseAddress, key.count) { return e }
                    }
                    i = (i + 1) & mask
                }
            }
        }
    }

    /// Whether entry `index` is `key`.
    @inlinable
    public func keyEquals(_ index: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        let r = keyRange(index)
        return r.count == key.count && keys.withUnsafeBytes { bytesEqual($0.baseAddress! + r.lowerBound, key.baseAddress, key.count) }
    }

    /// `find` for a table kept inside another value (a family's series in the store's
    /// array): taken `inout`, the call borrows it in place, where calling `find` copies
    /// the table out first and retains and releases its arrays (measured: 4 + 4
    /// atomic reference-count operations per sample on the store's hit path).
    public mutating func locate(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int? { find(key, hash: hash) }

    /// `keyEquals`, borrowed in place as `locate` is (3 + 3 reference-count operations fewer per call).
    public mutating func matches(_ index: Int, _ key: UnsafeRawBufferPointer) -> Bool { keyEquals(index, key) }

    /// Adds `key` (which must not be present) and returns its index; nil when the table
    /// holds `capacity` entries.
    public mutating func insert(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        guard !isFull else { return nil }
        if (count + 1) * 4 > slots.count * 3 { grow() }
        let index = count
        keys.reserveGrowingByAQuarter(adding: key.count)
        keys.append(contentsOf: key)
        keyEnds.reserveGrowingByAQuarter(adding: 1)
        keyEnds.append(UInt32(keys.count))
        place(index, hash: hash)
        return index
    }

    private mutating func place(_ index: Int, hash: UInt64) {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: hash) & mask
        while slots[i] != Self.empty { i = (i + 1) & mask }
        slots[i] = Self.tag(hash) | UInt32(index)
    }

    /// Forgets every key, keeping capacity.
    public mutating func removeAll() {
        for i in slots.indices { slots[i] = Self.empty }
        keyEnds.removeAll(keepingCapacity: true)
        keys.removeAll(keepingCapacity: true)
    }

    private mutating func grow() {
        slots = Array(repeating: Self.empty, count: slots.count * 2)
        for i in 0..<count { place(i, hash: withKey(i) { hashBytes($0) }) }
    }
}

/// Byte equality, inline: keys are a few dozen bytes, where a call to `memcmp` costs
/// more than the comparison (it was 6% of a drain).
@inlinable @inline(__always)
package func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer?, _ n: Int) -> Bool {
    guard n > 0, let b else { return true }
    var i = 0
    while i + 8 <= n {
        if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
        i += 8
    }
    if i + 4 <= n {
        if a.loadUnaligned(fromByteOffset: i, as: UInt32.self) != b.loadUnaligned(fromByteOffset: i, as: UInt32.self) { return false }
        i += 4
    }
    while i < n {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}

/// Byte order (bytewise, then the shorter first), as `lexicographicallyPrecedes`: label
/// names in `sort_labels` and in the sink's series key. Inline, eight bytes at a time: names
/// are short, and `memcmp` was a libc call per pair (1.3% of a drain).
@inlinable @inline(__always)
package func bytesPrecede(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    let n = min(a.count, b.count)
    var i = 0
    while i + 8 <= n {
        let x = a.loadUnaligned(fromByteOffset: i, as: UInt64.self).bigEndian, y = b.loadUnaligned(fromByteOffset: i, as: UInt64.self).bigEndian
        if x != y { return x < y }
        i += 8
    }
    while i < n {
        let x = a[i], y = b[i]
        if x != y { return x < y }
        i += 1
    }
    return a.count < b.count
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
