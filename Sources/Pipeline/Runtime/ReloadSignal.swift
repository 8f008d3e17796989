import Synchronization

/// Bumped on SIGHUP: stages that re-read files (the web config's certificates)
/// compare it with the generation they last saw.
public enum ReloadSignal {
    public static let generation = Atomic<UInt64>(0)

    public static func bump() { generation.add(1, ordering: .releasing) }
}
