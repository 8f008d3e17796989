import Synchronization

/// Where a source's stream starts when the source registers it.
///
/// The runtime, not the source, remembers how far every stream was handed on for
/// the life of the process: a source that a reload rebuilds learns it here, so it
/// cannot forget to continue its predecessor's numbering (re-emitting what the kept
/// sinks already applied would count it twice).
public enum StreamStart: Equatable, Sendable {
    /// No source of this process registered the stream before: the sinks' restored
    /// state says where it ends (`Checkpoints.restored(stream:)`, known once they start).
    case fresh
    /// A reload rebuilt the source: its predecessor handed on elements through
    /// `emitted` (the sinks apply them; never emit them again), `durable` of them
    /// are durable in every sink.
    case continuing(emitted: UInt64, durable: UInt64)
}

/// A registered stream: its number in acknowledgements and where it starts.
public struct StreamRegistration: Sendable {
    public let stream: UInt16
    public let start: StreamStart
}

/// Positions in the sources' streams that the sinks have made durable, and the
/// hand-off between the two (Vector's end-to-end acknowledgements, per stream).
///
/// - A source registers a stream (`register`) and emits batches whose
///   `Acknowledgement` covers element numbers `first…through`.
/// - A sink that persists its state restores the positions it holds at start
///   (`restore`), before any source runs; a source asks `restored` to know where
///   the durable state ends (its redelivery starts after it).
/// - Every sink that a stream reaches reports the ranges it made durable
///   (`markDurable`), in any order. Per sink, the position advances over
///   contiguous ranges only; the stream's durable position is the lowest over the
///   sinks it reaches, and it is delivered to the source's listener in order, each
///   value once and increasing.
///
/// Thread-safe; every call is one short lock.
public final class Checkpoints: Sendable {
    private struct Stream {
        var name: String
        var source: String
        /// Sinks this stream reaches → their contiguous durable position.
        var positions: [String: UInt64] = [:]
        /// Per sink: completed ranges beyond its position, by first element.
        var ahead: [String: [UInt64: UInt64]] = [:]
        var delivered: UInt64 = 0
        /// The highest element the source handed on (for a sink a reload adds).
        var handedOn: UInt64 = 0
        var listener: (@Sendable (UInt64) -> Void)?
    }
    private struct State {
        var streams: [Stream] = []
        var restored: [String: UInt64] = [:]
        /// Source id → the sinks its batches reach (set by the runtime).
        var sinksOf: [String: [String]] = [:]
    }
    private let state = Mutex(State())
    /// Group-mode shards between the source that leases them and the sink that holds their state.
    package let shards = ShardHandover()

    public init() {}

    /// Stream `name` continues from `through` as a whole (a shard gained from
    /// another gateway, whose state ends there): every sink's position and what
    /// was delivered start over from it.
    public func reset(stream name: String, through: UInt64) {
        state.withLock { s in
            guard let i = s.streams.firstIndex(where: { $0.name == name }) else { return }
            for sink in s.streams[i].positions.keys { s.streams[i].positions[sink] = through }
            s.streams[i].ahead = [:]
            s.streams[i].delivered = through
            s.streams[i].handedOn = through
        }
    }

    /// Which sinks source `source`'s batches reach (the runtime says so from the
    /// pipeline's edges, before any stage is built). After a reload, streams the
    /// source already registered follow: a sink no longer reached stops holding
    /// them back, a new one starts after what the source has handed on so far
    /// (it never sees those elements; the runtime calls this with the source's
    /// consumers held, see `PipelineRuntime`).
    package func setSinks(_ sinks: [String], of source: String) {
        state.withLock { s in
            s.sinksOf[source] = sinks
            for i in s.streams.indices where s.streams[i].source == source {
                let start = max(s.streams[i].delivered, s.streams[i].handedOn)
                for sink in s.streams[i].positions.keys where !sinks.contains(sink) {
                    s.streams[i].positions[sink] = nil
                    s.streams[i].ahead[sink] = nil
                }
                for sink in sinks where s.streams[i].positions[sink] == nil { s.streams[i].positions[sink] = start }
            }
        }
    }

    /// Numbers a stream of source `source`; the same name gets the same number.
    /// `listener` receives each new durable position, in increasing order. A stream
    /// registered before in this process (a reload rebuilt its source) continues
    /// where its previous source stopped (`StreamStart.continuing`).
    public func register(stream name: String, source: String, listener: @escaping @Sendable (UInt64) -> Void) -> StreamRegistration {
        state.withLock { s in
            if let i = s.streams.firstIndex(where: { $0.name == name }) {
                s.streams[i].listener = listener
                let st = s.streams[i]
                return StreamRegistration(stream: UInt16(i), start: .continuing(emitted: max(st.handedOn, st.delivered), durable: st.delivered))
            }
            var stream = Stream(name: name, source: source, listener: listener)
            let start = s.restored[name] ?? 0
            for sink in s.sinksOf[source] ?? [] { stream.positions[sink] = start }
            stream.delivered = start
            s.streams.append(stream)
            return StreamRegistration(stream: UInt16(s.streams.count - 1), start: .fresh)
        }
    }

    /// A sink's state holds stream `name` through element `through`. With several
    /// persisting sinks, the lowest wins.
    public func restore(stream name: String, through: UInt64) {
        state.withLock { s in
            let position = min(s.restored[name] ?? through, through)
            s.restored[name] = position
            // Sources register at build time, before sinks start and restore.
            if let i = s.streams.firstIndex(where: { $0.name == name }) {
                for sink in s.streams[i].positions.keys { s.streams[i].positions[sink] = position }
                s.streams[i].delivered = position
            }
        }
    }

    /// Where the restored state of stream `name` ends (nil: nothing restored).
    public func restored(stream name: String) -> UInt64? {
        state.withLock { $0.restored[name] }
    }

    /// A source handed on the batch with `ack` (called by its output).
    package func handedOn(_ ack: Acknowledgement) {
        state.withLock { s in
            guard Int(ack.stream) < s.streams.count else { return }
            s.streams[Int(ack.stream)].handedOn = max(s.streams[Int(ack.stream)].handedOn, ack.through)
        }
    }

    /// Sink `sink` made these ranges durable.
    public func markDurable(_ acks: [Acknowledgement], by sink: String) {
        var calls: [(@Sendable (UInt64) -> Void, UInt64)] = []
        state.withLock { s in
            for a in acks where Int(a.stream) < s.streams.count {
                var st = s.streams[Int(a.stream)]
                guard var position = st.positions[sink] else { continue }
                if a.first > a.through || a.through <= position {
                    // empty, or already covered
                } else if a.first <= position + 1 {
                    position = a.through
                } else {
                    st.ahead[sink, default: [:]][a.first] = max(st.ahead[sink]?[a.first] ?? 0, a.through)
                }
                while let next = st.ahead[sink]?.removeValue(forKey: position + 1) { position = max(position, next) }
                st.positions[sink] = position
                let low = st.positions.values.min() ?? position
                if low > st.delivered, let l = st.listener {
                    st.delivered = low
                    calls.append((l, low))
                }
                s.streams[Int(a.stream)] = st
            }
        }
        for (listener, position) in calls { listener(position) }
    }

    /// The name of a registered stream (what a state file records).
    public func streamName(_ stream: UInt16) -> String? {
        state.withLock { Int(stream) < $0.streams.count ? $0.streams[Int(stream)].name : nil }
    }
}
