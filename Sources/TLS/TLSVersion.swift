import COpenSSL

/// A TLS protocol version, spelled as the exporter-toolkit web config (`TLS12`)
/// and StackExchange.Redis' `sslProtocols` (`Tls12`) spell it.
public enum TLSVersion: String, CaseIterable, Sendable, Comparable {
    case tls10 = "TLS10", tls11 = "TLS11", tls12 = "TLS12", tls13 = "TLS13"

    public init?(spelling: String) {
        guard let v = Self.allCases.first(where: { $0.rawValue.lowercased() == spelling.lowercased() }) else { return nil }
        self = v
    }

    var openSSL: Int32 {
        switch self {
        case .tls10: TLS1_VERSION
        case .tls11: TLS1_1_VERSION
        case .tls12: TLS1_2_VERSION
        case .tls13: TLS1_3_VERSION
        }
    }

    public static func < (a: Self, b: Self) -> Bool { a.openSSL < b.openSSL }
}
