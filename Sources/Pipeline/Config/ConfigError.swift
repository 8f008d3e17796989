/// A configuration mistake, with what a user needs to find and fix it: the stage
/// (`transforms.decode`), the key (`workers`), the line, and what is wrong.
public struct ConfigError: Error, Sendable, CustomStringConvertible, Equatable {
    /// Dotted path of the stage or section, e.g. `sinks.prometheus`; empty at top level.
    public var path: String
    /// The offending key, relative to `path`; nil when the whole section is meant.
    public var key: String?
    /// 1-based line in the (env-expanded) YAML file, when known.
    public var line: Int?
    public var message: String
    /// Environment variables whose values made the offending value, so a user
    /// fixes the variable, not the file (`Redis__MetricQueueDatabase`).
    public var variables: [String] = []

    public init(path: String = "", key: String? = nil, line: Int? = nil, message: String, variables: [String] = []) {
        self.path = path; self.key = key; self.line = line; self.message = message; self.variables = variables
    }

    /// For `StageConfig.validate()`: the runtime fills in path and line.
    public static func invalid(key: String, reason: String) -> ConfigError {
        ConfigError(key: key, message: reason)
    }

    public var location: String {
        [path, key].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ".")
    }

    public var description: String {
        let prefix = line.map { "line \($0): " } ?? ""
        let loc = location
        let from = variables.isEmpty ? "" : " (from environment variable\(variables.count > 1 ? "s" : "") "
            + "\(variables.map { "`\($0)`" }.joined(separator: ", ")))"
        return prefix + (loc.isEmpty ? "" : "\(loc)\(from): ") + (loc.isEmpty ? from.isEmpty ? "" : "\(from.dropFirst()): " : "") + message
    }
}

/// Every mistake in a configuration, sorted by line. Thrown instead of the first one
/// so a user fixes a file in one round.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ConfigError]
    public init(_ errors: [ConfigError]) {
        self.errors = errors.sorted { ($0.line ?? .max, $0.location) < ($1.line ?? .max, $1.location) }
    }
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
