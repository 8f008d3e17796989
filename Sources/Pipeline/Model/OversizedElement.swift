/// What a source hands on in place of a queue element too large to read: a marker, the
/// element's size and its first bytes (for the log's excerpt and a dead letter). The
/// element itself is skipped as it arrives, so one element of up to Redis's 512 MB costs
/// no memory; the decoder drops the stand-in as `payload_too_large`.
///
/// JSON never starts with a NUL byte, so no element a sender could parse is taken for one;
/// an element that forges the marker is dropped just the same.
public enum OversizedElement {
    /// The first bytes of every stand-in: NUL, `psg-oversized:`.
    public static let marker: [UInt8] = [0] + Array("psg-oversized:".utf8)
    /// Bytes of the element a stand-in keeps: what a dead letter keeps.
    public static let kept = DeadLetterConfig.maxPayloadBytes

    /// The stand-in's first bytes for an element of `size` bytes: the marker, the size in
    /// decimal and a NUL; the element's first `kept` bytes (or fewer) follow.
    public static func header(size: Int) -> [UInt8] { marker + Array(String(size).utf8) + [0] }

    /// The element's size and first bytes, when `payload` is a stand-in.
    public static func parse(_ payload: UnsafeRawBufferPointer) -> (size: Int, prefix: UnsafeRawBufferPointer)? {
        guard payload.count > marker.count, payload.first == 0, payload.starts(with: marker) else { return nil }
        let rest = UnsafeRawBufferPointer(rebasing: payload[(payload.startIndex + marker.count)...])
        guard let end = rest.firstIndex(of: 0), end > rest.startIndex, end - rest.startIndex <= 20,
              let size = Int(String(decoding: UnsafeRawBufferPointer(rebasing: rest[..<end]), as: UTF8.self)) else { return nil }
        return (size, UnsafeRawBufferPointer(rebasing: rest[(end + 1)...]))
    }
}
