/// Where a family lives when the queue is sharded: `crc32(name) mod shards`, with
/// IEEE CRC-32 — what PHP's `crc32`, Python's `zlib.crc32`, Go's
/// `crc32.ChecksumIEEE` and Node's `zlib.crc32` compute — so a sender in any
/// language routes a metric to the shard whose owner aggregates it.
public enum ShardRouting {
    /// The queue senders push onto (the .NET gateway's `Redis__MetricQueueKey` default).
    public static let defaultQueueKey = "prom-stream-gateway:metric-queue"

    /// The queue key of shard `shard` of queue `key`: `key:{shard}`. The braces are a
    /// Redis Cluster hash tag, so the shard's companions (`key:{shard}:processing`,
    /// `…:state`, `…:owner`) share its slot and one script may touch them all.
    public static func queueKey(_ key: String, shard: Int) -> String { "\(key):{\(shard)}" }

    /// Why a sharded queue's key may not hold a hash tag: Redis Cluster hashes a key by its first `{…}`,
    /// so every `key:{s}` would share one slot, one node — no scale-out, and no error to say so.
    public static let taggedKeyRefusal = "must not contain a Redis Cluster hash tag `{…}` with shards: every shard K:{s} "
        + "would hash by it to one slot, on one node"

    public static func shard<C: Collection>(ofName name: C, shards: Int) -> Int where C.Element == UInt8 {
        Int(crc32(name) % UInt32(shards))
    }

    public static func shard(of name: String, shards: Int) -> Int { shard(ofName: Array(name.utf8), shards: shards) }

    /// IEEE CRC-32 (reflected, polynomial 0xEDB88320).
    public static func crc32<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }
}

/// Redis Cluster's key → slot: CRC16 (XMODEM) of the key, or of its hash tag — the
/// part between the first `{` and the next `}` when that is not empty — mod 16384.
public enum HashSlot {
    public static let count = 16384

    public static func of<C: Collection>(_ key: C) -> Int where C.Element == UInt8, C.Index == Int {
        if let tag = tag(key) { return Int(crc16(key[tag]) % UInt16(count)) }
        return Int(crc16(key) % UInt16(count))
    }

    /// Where the key's hash tag is, if it has one.
    static func tag<C: Collection>(_ key: C) -> Range<Int>? where C.Element == UInt8, C.Index == Int {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")),
              let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1 else { return nil }
        return (open + 1)..<close
    }

    public static func hasTag(_ key: String) -> Bool { tag(Array(key.utf8)) != nil }

    public static func of(_ key: String) -> Int { of(Array(key.utf8)) }

    public static func crc16<C: Collection>(_ bytes: C) -> UInt16 where C.Element == UInt8 {
        var crc: UInt16 = 0
        for b in bytes { crc = (crc << 8) ^ table[Int(((crc >> 8) ^ UInt16(b)) & 0xFF)] }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { n in
        var c = UInt16(n) << 8
        for _ in 0..<8 { c = c & 0x8000 != 0 ? (c << 1) ^ 0x1021 : c << 1 }
        return c
    }
}
