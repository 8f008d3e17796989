import Pipeline

/// The Redis keys of one shard of a sharded queue, all in the shard's slot (the
/// `{shard}` hash tag), and the scripts that touch them.
///
/// - `K:{s}`: the queue senders push onto.
/// - `K:{s}:processing`, `K:{s}:processing:acked`: elements popped and not yet in
///   a durable state, and how many were ever trimmed (as `ReliableQueue`, but one
///   per shard: the shard, not the gateway, is the unit of durability).
/// - `K:{s}:state`: the shard's aggregate, written by its owner's sink.
/// - `K:{s}:owner`: the lease, `SET … NX PX lease_ttl`, holding the owner's token.
///
/// **Fencing.** Every script that changes a shard first checks that the owner key
/// holds the caller's token; a caller whose lease expired (paused, partitioned)
/// and was taken by another gets `FENCED` and changes nothing. Redis runs a script
/// atomically, so the check and the change cannot be separated by another owner.
/// An empty token (a sharded queue without `group`: one gateway owns every shard)
/// skips the check.
public struct ShardKeys: Sendable, Equatable {
    public let shard: Int
    public let queue: String
    public let processing: String
    public let acked: String
    public let state: String
    public let owner: String
    public let slot: Int

    public init(key: String, shard: Int) {
        self.shard = shard
        queue = ShardRouting.queueKey(key, shard: shard)
        processing = queue + ":processing"
        acked = processing + ":acked"
        state = queue + ":state"
        owner = queue + ":owner"
        slot = HashSlot.of(queue)
    }

    /// The members of group `group` on queue `key` (a sorted set: member → expiry in ms).
    public static func members(key: String, group: String) -> String { "\(key):group:\(group)" }

    static let fence = """
        if ARGV[1] ~= '' and redis.call('GET', KEYS[#KEYS]) ~= ARGV[1] then
          return redis.error_reply('FENCED this gateway does not hold the shard lease')
        end
        """

    /// KEYS: queue, processing, owner. ARGV: token, count. The elements popped
    /// (oldest first), now also on the processing list.
    public static let pop = RedisScript(fence + "\n" + ReliableQueue.pop(count: "ARGV[2]"))

    /// KEYS: processing, acked, owner. ARGV: token, through. Removes the elements
    /// numbered through `through`; returns the counter afterwards.
    public static let trim = RedisScript(fence + "\n" + ReliableQueue.trim(through: "ARGV[2]"))

    /// KEYS: acked, owner. ARGV: token, value. Renumbers (Redis lost its bookkeeping).
    public static let setAcked = RedisScript(fence + "\n" + """
        redis.call('SET', KEYS[1], ARGV[2])
        return 1
        """)

    /// KEYS: state, owner. ARGV: token, bytes.
    public static let writeState = RedisScript(fence + "\n" + """
        redis.call('SET', KEYS[1], ARGV[2])
        return 1
        """)

    /// KEYS: owner. ARGV: token, ttl ms. 1 when renewed, 0 when the lease is another's or gone.
    public static let renew = RedisScript("""
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          redis.call('PEXPIRE', KEYS[1], ARGV[2])
          return 1
        end
        return 0
        """)

    /// KEYS: owner. ARGV: token. Deletes the lease if it is still the caller's.
    public static let release = RedisScript("""
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """)

    /// KEYS: members. ARGV: member, ttl ms. Records the member as live for ttl,
    /// forgets expired ones, returns the live members (sorted by name).
    public static let heartbeat = RedisScript("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 10)
        local live = redis.call('ZRANGE', KEYS[1], 0, -1)
        table.sort(live)
        return live
        """)
}
