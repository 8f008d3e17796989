/// A source's view of Redis failing and answering again — one policy for the plain
/// and the sharded `redis_list` loops: after each failure a capped exponential
/// back-off with jitter (`delay`), logged once per outage, counted as a reconnect
/// when a connection that once worked comes back.
struct Outage {
    private(set) var attempt = 0
    /// Inside an outage (its start was logged).
    private(set) var failing = false
    private(set) var everConnected = false

    /// A failure: the pause before the next try, and whether it starts an outage (log it).
    mutating func failed(maxBackoff: Double, random: (ClosedRange<Double>) -> Double = { .random(in: $0) }) -> (delay: Double, starts: Bool) {
        attempt += 1
        defer { failing = true }
        return (Self.delay(attempt: attempt, maxBackoff: maxBackoff, random: random), !failing)
    }

    /// Redis answered: whether it ended an outage, and whether it is a reconnect (it had answered before).
    mutating func answered() -> (endsOutage: Bool, reconnect: Bool) {
        defer { attempt = 0; failing = false; everConnected = true }
        return (failing, everConnected)
    }

    /// A connection that worked broke: the outage starts now (logged by the caller).
    mutating func broke() { failing = true }

    /// `0.05 s · 2^attempt`, capped at `maxBackoff`, drawn from its upper half (jitter).
    static func delay(attempt: Int, maxBackoff: Double, random: (ClosedRange<Double>) -> Double) -> Double {
        let cap = min(maxBackoff, 0.05 * Double(1 << min(attempt, 16)))
        return random(cap / 2...cap)
    }
}
