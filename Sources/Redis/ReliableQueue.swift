import Pipeline

/// The Redis side of `reliable: true`: each instance's processing list, and the
/// two scripts that keep it exact.
///
/// Elements move atomically from the queue onto `<key>:processing:<instance>`
/// (`pop`: `RPOP key n` + `LPUSH` in one script, pipelined like plain pops; the
/// idle wait is `BLMOVE key processing RIGHT LEFT`), so the processing list holds,
/// oldest at the right, every element popped and not yet acknowledged.
/// `<processing>:acked` counts the elements ever trimmed from it; so the element at
/// the right end has sequence number `acked + 1`, the one at the left end
/// `acked + LLEN`. `trim` removes the oldest ones through a sequence number and
/// advances the counter in one script — never one without the other.
public struct ReliableQueue: Sendable {
    public let processing: String
    public let acked: String

    /// `hashTagged` (Redis Cluster): a key without a hash tag gets its companions as
    /// `{key}:…`, in the key's slot, so that one script may touch both.
    public init(key: String, instance: String, hashTagged: Bool = false) {
        let base = hashTagged && !HashSlot.hasTag(key) ? "{\(key)}" : key
        processing = "\(base):processing:\(instance)"
        acked = "\(processing):acked"
    }

    /// KEYS: queue, processing. ARGV: count. Returns the elements, oldest first (as
    /// `RPOP key count` does), or an empty array.
    public static let popScript = pop(count: "ARGV[1]")

    /// KEYS: processing, acked. ARGV: through. Removes the elements numbered up to
    /// `through` and records it; returns the counter afterwards.
    public static let trimScript = trim(through: "ARGV[1]")

    /// The pop script's body with the count in `count` (the sharded queue's fenced
    /// pop passes its count after the lease token).
    public static func pop(count: String) -> String {
        """
        local items = redis.call('RPOP', KEYS[1], \(count))
        if not items then return {} end
        for i = 1, #items, 1000 do
          redis.call('LPUSH', KEYS[2], unpack(items, i, math.min(i + 999, #items)))
        end
        return items
        """
    }

    /// The trim script's body with the position in `through`.
    public static func trim(through: String) -> String {
        """
        local acked = tonumber(redis.call('GET', KEYS[2]) or '0')
        local through = tonumber(\(through))
        if through > acked then
          redis.call('LTRIM', KEYS[1], 0, -(through - acked) - 1)
          redis.call('SET', KEYS[2], \(through))
          return through
        end
        return acked
        """
    }

    /// KEYS: processing, acked, queue. Moves every element of a processing list
    /// back onto the queue so that the oldest is popped first, and forgets the list.
    public static let requeueScript = """
        local items = redis.call('LRANGE', KEYS[1], 0, -1)
        for i = 1, #items, 1000 do
          redis.call('RPUSH', KEYS[3], unpack(items, i, math.min(i + 999, #items)))
        end
        redis.call('DEL', KEYS[1], KEYS[2])
        return #items
        """
}
