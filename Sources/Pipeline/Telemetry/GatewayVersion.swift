/// The gateway's version, shown by `gateway --version` and `prom_stream_gateway_info`.
public enum GatewayVersion {
    public static let current = "0.1.0"
}
