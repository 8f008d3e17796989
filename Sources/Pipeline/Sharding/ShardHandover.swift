import Synchronization

/// The sink that keeps the state of a group's shards (`state: redis`). It only
/// answers the handover: load, capture and drop a shard's families.
package protocol ShardStateHolder: AnyObject, Sendable {
    /// How often the handover writes each shard that took batches (or lost series).
    var snapshotInterval: Duration { get }
    /// Serve shard `shard` of `shards`, whose batches come on `stream`, from
    /// `state` (its snapshot as this holder wrote it; nil: none). Returns the stream
    /// position the state holds (0: none), where the source's redelivery starts.
    func load(_ shard: Int, of shards: Int, stream: UInt16, state: [UInt8]?) -> UInt64
    /// Waits until the holder has consumed `stream` through `through` — applied or, for
    /// a shard it does not serve, skipped (woken by each batch, not polled); false when
    /// `seconds` passed first.
    func waitConsumed(stream: UInt16, through: UInt64, seconds: Double) -> Bool
    /// The shard's families with every batch applied so far and the position they
    /// reach (at least `written`); `.unchanged` when nothing arrived or was removed since `written`, and not `force`.
    func capture(_ shard: Int, stream: UInt16, written: UInt64, force: Bool) -> ShardCapture
    /// The handover wrote a capture (`through`: nil when the write failed).
    func recordWrite(stream: UInt16, bytes: Int, through: UInt64?)
    /// Stop serving the shard's families and skip its batches until loaded again.
    func drop(_ shard: Int)
}

/// What a holder's capture of one shard found.
package enum ShardCapture: Sendable {
    case notServed
    case unchanged
    case state(bytes: [UInt8], through: UInt64)
}

/// Writes a shard's state next to its queue, fenced by the lease (the source).
package protocol ShardStateStore: AnyObject, Sendable {
    /// False when this gateway no longer holds the shard's lease or Redis failed.
    func writeState(shard: Int, bytes: [UInt8]) -> Bool
}

/// Moves group-mode shards between the source that leases them and the sink that
/// holds their state. The runtime owns it (`Checkpoints.shards`), so it outlives a
/// reload of either stage. The source reports lease events (`gain`, `release`,
/// `lost`); the handover drives the holder, and writes states through the store on a
/// thread of its own every `snapshotInterval`. Calls go one way — source → handover
/// → holder and store — and neither stage calls the other.
///
/// **Lock order:** `writing` → the holder's locks; `parts` is innermost and never
/// held while calling out.
package final class ShardHandover: Sendable {
    /// Where one shard stands on this gateway.
    package enum Phase: Sendable, Equatable {
        /// The source holds the lease; the holder is loading the state.
        case gaining
        /// The holder serves the shard; `written`: the position of the last state written.
        case serving(stream: UInt16, written: UInt64)
        /// The lease is being handed back: the holder consumes what was emitted and
        /// the final state is written.
        case releasing(stream: UInt16, written: UInt64)
        /// Not ours. `emitted`: what was handed on while it was (a regain waits until
        /// the holder consumed it); `dropped`: false while no holder was attached (a
        /// reload replacing it): the next one drops the shard when it attaches.
        case lost(stream: UInt16, emitted: UInt64, dropped: Bool)
    }
    private typealias Writer = (thread: OSThread, control: SourceControl)
    private struct Parts {
        var holder: (any ShardStateHolder)?
        var store: (any ShardStateStore)?
        var phases: [Int: Phase] = [:]
        var writer: Writer?
    }
    private let parts = Mutex(Parts())
    /// Serializes loading and writing (the writer thread, the source's thread).
    private let writing = Mutex(())

    package init() {}

    package var hasHolder: Bool { parts.withLock { $0.holder != nil } }
    package func phase(_ shard: Int) -> Phase? { parts.withLock { $0.phases[shard] } }

    // MARK: Registration

    /// A sink that holds shard state starts (sinks start before sources). Shards
    /// lost while none was attached are dropped from the state it adopted.
    package func attach(holder: any ShardStateHolder) {
        let (undropped, previous) = parts.withLock { p -> ([Int], Writer?) in
            p.holder = holder
            var lost: [Int] = []
            for (shard, phase) in p.phases {
                if case .lost(let s, let e, false) = phase {
                    p.phases[shard] = .lost(stream: s, emitted: e, dropped: true)
                    lost.append(shard)
                }
            }
            defer { p.writer = nil }
            return (lost.sorted(), p.writer)
        }
        stop(previous)
        for shard in undropped { holder.drop(shard) }
        let control = SourceControl()
        let interval = holder.snapshotInterval.inSeconds
        let thread = OSThread.spawn(name: "shard-state") { [self] in
            while !control.isStopping {
                control.sleep(seconds: interval)
                if control.isStopping { break }
                for shard in served() { _ = persist(shard, force: false) }
            }
        }
        parts.withLock { $0.writer = (thread, control) }
    }

    /// The holder stops (a reload may have attached its successor already). Returns
    /// once no load into it is in flight, so a reload's successor adopts what it loaded.
    package func detach(holder: any ShardStateHolder) {
        let w = parts.withLock { p -> Writer? in
            guard p.holder === holder else { return nil }
            p.holder = nil
            defer { p.writer = nil }
            return p.writer
        }
        stop(w)
        writing.withLock { _ in }   // a `gain` that took this holder before finishes its load, or sees it gone
    }

    package func attach(store: any ShardStateStore) { parts.withLock { $0.store = store } }
    package func detach(store: any ShardStateStore) { parts.withLock { if $0.store === store { $0.store = nil } } }

    private func stop(_ w: Writer?) {
        guard let w else { return }
        w.control.requestStop()
        w.thread.join()
    }

    private func served() -> [Int] {
        parts.withLock { p in p.phases.compactMap { if case .serving = $0.value { $0.key } else { nil } }.sorted() }
    }

    // MARK: Lease events (the source's thread)

    package enum GainOutcome: Sendable, Equatable {
        /// Served; the state holds the stream through `position`. `waited`: false when
        /// batches of an earlier hold were still unconsumed after the wait.
        case served(position: UInt64, waited: Bool)
        /// No holder is attached (a reload replaces it): try again later.
        case noHolder
    }

    /// The source leased `shard` of `shards` and read its `state` from Redis.
    package func gain(_ shard: Int, of shards: Int, stream: UInt16, state: [UInt8]?, waitSeconds: Double = 10) -> GainOutcome {
        guard let holder = parts.withLock({ $0.holder }) else { return .noHolder }
        var waited = true
        if case .lost(_, let emitted, _) = phase(shard) {
            // what this gateway emitted while it held the shard before is skipped first, or the state would count it again
            waited = holder.waitConsumed(stream: stream, through: emitted, seconds: waitSeconds)
        }
        let position = writing.withLock { _ -> UInt64? in
            let attached = parts.withLock { p in
                guard p.holder === holder else { return false }   // detached while waiting: not into a stopped sink
                p.phases[shard] = .gaining
                return true
            }
            guard attached else { return nil }
            return holder.load(shard, of: shards, stream: stream, state: state)
        }
        guard let position else { return .noHolder }
        parts.withLock { $0.phases[shard] = .serving(stream: stream, written: position) }
        return .served(position: position, waited: waited)
    }

    /// What handing a shard back did.
    package struct Released: Sendable, Equatable {
        /// The position the final state holds; nil when it was not written.
        package var written: UInt64?
        /// False when the holder had not consumed every emitted batch within the wait.
        package var consumed: Bool
        package init(written: UInt64?, consumed: Bool) { (self.written, self.consumed) = (written, consumed) }
    }

    /// The source hands `shard` back, before it deletes the lease: the holder
    /// consumes what was emitted through `emitted`, the final state is written, and
    /// the holder stops serving the shard.
    package func release(_ shard: Int, emitted: UInt64, waitSeconds: Double = 10) -> Released {
        guard case .serving(let stream, let written) = phase(shard) else {
            lost(shard, emitted: emitted)
            return Released(written: nil, consumed: true)
        }
        let holder = parts.withLock { p in
            p.phases[shard] = .releasing(stream: stream, written: written)
            return p.holder
        }
        let consumed = holder?.waitConsumed(stream: stream, through: emitted, seconds: waitSeconds) ?? true   // none: the next one drops it
        let through = persist(shard, force: true)
        lost(shard, emitted: emitted)
        return Released(written: through, consumed: consumed)
    }

    /// The lease is gone (expired, fenced) or was handed back: the holder stops
    /// serving the shard at once, and skips its batches still in flight.
    package func lost(_ shard: Int, emitted: UInt64) {
        let (holder, stream) = parts.withLock { p -> ((any ShardStateHolder)?, UInt16?) in
            switch p.phases[shard] {
            case .serving(let s, _), .releasing(let s, _): return (p.holder, s)
            case .lost(let s, let e, let d):
                p.phases[shard] = .lost(stream: s, emitted: max(e, emitted), dropped: d)
                return (nil, nil)
            case .gaining, nil: return (nil, nil)
            }
        }
        guard let stream else { return }
        holder?.drop(shard)
        parts.withLock { $0.phases[shard] = .lost(stream: stream, emitted: emitted, dropped: holder != nil) }
    }

    // MARK: Writing

    /// Captures and writes one served shard's state: the position it holds, or nil
    /// when the shard is not served or the write failed (the lease is gone).
    package func persist(_ shard: Int, force: Bool) -> UInt64? {
        writing.withLock { _ -> UInt64? in
            let (holder, store, phase) = parts.withLock { ($0.holder, $0.store, $0.phases[shard]) }
            guard let holder else { return nil }
            let stream: UInt16, written: UInt64
            switch phase {
            case .serving(let s, let w), .releasing(let s, let w): (stream, written) = (s, w)
            case .gaining, .lost, nil: return nil
            }
            switch holder.capture(shard, stream: stream, written: written, force: force) {
            case .notServed: return nil
            case .unchanged: return written
            case .state(let bytes, let through):
                guard let store, store.writeState(shard: shard, bytes: bytes) else {
                    holder.recordWrite(stream: stream, bytes: bytes.count, through: nil)
                    return nil
                }
                parts.withLock { p in
                    switch p.phases[shard] {
                    case .serving(let s, _): p.phases[shard] = .serving(stream: s, written: through)
                    case .releasing(let s, _): p.phases[shard] = .releasing(stream: s, written: through)
                    case .gaining, .lost, nil: break
                    }
                }
                holder.recordWrite(stream: stream, bytes: bytes.count, through: through)
                return through
            }
        }
    }
}
