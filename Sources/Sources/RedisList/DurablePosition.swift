import Synchronization

/// A position written by one thread (the `Checkpoints` listener) and read by another (the source's).
final class DurablePosition: Sendable {
    let value = Atomic<UInt64>(0)
}
