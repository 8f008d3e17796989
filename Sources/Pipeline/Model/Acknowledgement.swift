/// What a batch covers of its source's stream, so that the source can forget
/// (acknowledge upstream) what sinks have made durable.
///
/// A source that can redeliver (`redis_list` with `reliable: true`) numbers the
/// elements it emits 1, 2, 3, … per stream and puts the range of a batch here; the
/// runtime carries it unchanged through every transform (even one that empties or
/// replaces the batch) to every sink, and sinks report it durable through
/// `Checkpoints`. Nil for sources that cannot redeliver.
public struct Acknowledgement: Sendable, Equatable {
    /// The stream, as `Checkpoints.register` numbered it.
    public var stream: UInt16
    /// First and last element sequence number of the batch (`first > through`: an
    /// empty range, which still moves nothing).
    public var first: UInt64
    public var through: UInt64

    public init(stream: UInt16, first: UInt64, through: UInt64) {
        self.stream = stream; self.first = first; self.through = through
    }
}
