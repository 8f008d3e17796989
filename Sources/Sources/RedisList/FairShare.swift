/// Which shards a group member gives back or tries to take, from the live members and
/// what it holds — a value (`FairShareTests`). Each member aims at ⌈shards / members⌉;
/// a member prefers the shards `s` with `s mod members == its rank` (its rank in the
/// sorted member list), so that after a rebalance the members settle on disjoint sets
/// instead of racing for the same ones. It releases the shards it prefers least first
/// and tries the ones it prefers most first (a `SET NX` may still lose to another).
struct FairShare: Equatable {
    /// ⌈shards / members⌉.
    let target: Int
    /// Shards to hand back now, in order.
    let release: [Int]
    /// Shards to try to take, in order, until `target` is held.
    let candidates: [Int]

    init(shards: Int, members: [String], me: String, mine: Set<Int>) {
        let live = max(1, members.count)
        let rank = members.firstIndex(of: me) ?? 0
        target = (shards + live - 1) / live
        let preferred = { (s: Int) in s % live == rank }
        if mine.count > target {
            release = Array(mine.sorted { (preferred($0) ? 1 : 0, $0) < (preferred($1) ? 1 : 0, $1) }.prefix(mine.count - target))
            candidates = []
        } else if mine.count < target {
            release = []
            candidates = (0..<shards).filter { !mine.contains($0) }.sorted { (preferred($0) ? 0 : 1, $0) < (preferred($1) ? 0 : 1, $1) }
        } else {
            release = []
            candidates = []
        }
    }
}
